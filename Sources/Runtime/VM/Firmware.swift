#if canImport(Glibc)
import Glibc
#endif

/// The guest kernel and agent initramfs a sandbox VM boots, and the kvmrun executable that
/// runs its VMM. Found in KVMRUN_FIRMWARE (a directory with vmlinux and
/// agent-initramfs.cpio.gz), else beside the executable as installed (../share/kvmrun), else in
/// the source tree the executable was built in (.build/release/kvmrun → firmware/out).
public struct Firmware: Sendable, Equatable {
    public var kernel: String
    public var initrd: String
    public var executable: String

    public init(kernel: String, initrd: String, executable: String) {
        self.kernel = kernel
        self.initrd = initrd
        self.executable = executable
    }

    public static func locate(executable: String = Firmware.currentExecutable()) throws(RuntimeError) -> Firmware {
        let binDirectory = executable.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        var candidates: [String] = []
        if let explicit = getenv("KVMRUN_FIRMWARE") { candidates.append(String(cString: explicit)) }
        candidates += [binDirectory + "/../share/kvmrun", binDirectory + "/../../firmware/out",
                       binDirectory + "/../../../firmware/out", "/usr/local/share/kvmrun", "/usr/share/kvmrun"]
        for directory in candidates {
            let kernel = directory + "/vmlinux", initrd = directory + "/agent-initramfs.cpio.gz"
            if access(kernel, R_OK) == 0 && access(initrd, R_OK) == 0 {
                return Firmware(kernel: kernel, initrd: initrd, executable: executable)
            }
        }
        throw .invalidInput("no guest firmware (vmlinux and agent-initramfs.cpio.gz) in \(candidates.joined(separator: ", ")): build it with 'make firmware' or set KVMRUN_FIRMWARE")
    }

    public static func currentExecutable() -> String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard count > 0 else { return "/proc/self/exe" }
        return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
