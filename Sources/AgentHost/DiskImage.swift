#if canImport(Glibc)
import Glibc
#endif

/// Disk images for agent VMs: each VM gets its own copy of the container image.
public enum DiskImage {
    /// Copies `source` to `destination` (created or truncated). Throws naming the failing file.
    public static func copy(_ source: String, to destination: String) throws {
        let input = open(source, O_RDONLY | O_CLOEXEC)
        guard input >= 0 else { throw AgentDriverError("open \(source): errno \(errno)") }
        defer { close(input) }
        let output = open(destination, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard output >= 0 else { throw AgentDriverError("create \(destination): errno \(errno)") }
        defer { close(output) }
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            // SAFETY: reads and writes within the local buffer.
            let count = buffer.withUnsafeMutableBytes { read(input, $0.baseAddress, $0.count) }
            if count == 0 { return }
            guard count > 0 else { throw AgentDriverError("read \(source): errno \(errno)") }
            guard buffer.withUnsafeBytes({ write(output, $0.baseAddress, count) }) == count else {
                throw AgentDriverError("write \(destination): errno \(errno)")
            }
        }
    }
}
