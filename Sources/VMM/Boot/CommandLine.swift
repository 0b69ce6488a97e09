import Memory

/// The kernel command line as the bytes written to `MachineLayout.commandLine`.
/// (Named `BootCommandLine` because the standard library owns `CommandLine`.)
public enum BootCommandLine {
    /// Longest command line the area holds, leaving room for the NUL.
    public static let areaLimit = Int(MachineLayout.commandLineAreaSize) - 1

    /// Validates `text` against the kernel's limit (cmdline_size, without the NUL) and the
    /// area's, and returns it NUL-terminated. Only printable ASCII and spaces are accepted:
    /// the kernel parses bytes, and a control character is almost always a quoting mistake.
    public static func encode(_ text: String, kernelLimit: UInt32) throws(BootError) -> [UInt8] {
        let bytes = Array(text.utf8)
        let limit = min(Int(kernelLimit), areaLimit)
        guard bytes.count <= limit else {
            let which = limit == areaLimit ? "the \(areaLimit)-byte command-line area"
                                           : "the kernel's cmdline_size of \(kernelLimit) bytes"
            throw .commandLine("\(bytes.count) bytes exceed \(which)")
        }
        if let index = bytes.firstIndex(of: 0) {
            throw .commandLine("NUL byte at offset \(index)")
        }
        if let index = bytes.firstIndex(where: { $0 < 0x20 || $0 > 0x7E }) {
            throw .commandLine("byte \(hexString(bytes[index])) at offset \(index) is not printable ASCII")
        }
        return bytes + [0]
    }
}
