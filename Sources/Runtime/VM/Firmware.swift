#if canImport(Glibc)
import Glibc
#endif

/// The guest kernel and agent root a sandbox VM boots, and the kvmrun executable that runs its
/// VMM. Found in KVMRUN_FIRMWARE (a directory with vmlinux and agent-disk.ext4 or
/// agent-initramfs.cpio.gz), else beside the executable as installed (../share/kvmrun), else in
/// the source tree the executable was built in (.build/release/kvmrun → firmware/out).
public struct Firmware: Sendable, Equatable {
    /// Where the agent (the guest's PID 1) comes from.
    public enum AgentRoot: Sendable, Equatable {
        /// A read-only ext4 disk booted as the root (`root=/dev/vda ro`): the guest reads only
        /// the agent pages it runs, as page cache it can reclaim. Preferred.
        case disk(String)
        /// An initramfs: copied into guest memory and unpacked into a tmpfs whole.
        case initramfs(String)

        public var path: String {
            switch self {
            case .disk(let path), .initramfs(let path): path
            }
        }
    }

    public var kernel: String
    public var agentRoot: AgentRoot
    public var executable: String

    public init(kernel: String, agentRoot: AgentRoot, executable: String) {
        self.kernel = kernel
        self.agentRoot = agentRoot
        self.executable = executable
    }

    /// `KVMRUN_AGENT_ROOT=initramfs` picks the initramfs even where the disk exists (to compare
    /// the two; `disk`, the default, falls back to the initramfs when there is no disk).
    public static func locate(executable: String = Firmware.currentExecutable()) throws(RuntimeError) -> Firmware {
        let binDirectory = executable.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        var candidates: [String] = []
        if let explicit = getenv("KVMRUN_FIRMWARE") { candidates.append(String(cString: explicit)) }
        candidates += [binDirectory + "/../share/kvmrun", binDirectory + "/../../firmware/out",
                       binDirectory + "/../../../firmware/out", "/usr/local/share/kvmrun", "/usr/share/kvmrun"]
        let preferDisk: Bool
        switch getenv("KVMRUN_AGENT_ROOT").map({ String(cString: $0) }) ?? "disk" {
        case "disk", "": preferDisk = true
        case "initramfs": preferDisk = false
        case let other: throw .invalidInput("KVMRUN_AGENT_ROOT must be disk or initramfs, got '\(other)'")
        }
        for directory in candidates {
            let kernel = directory + "/vmlinux"
            guard access(kernel, R_OK) == 0 else { continue }
            let disk = directory + "/agent-disk.ext4", initrd = directory + "/agent-initramfs.cpio.gz"
            if preferDisk && access(disk, R_OK) == 0 {
                return Firmware(kernel: kernel, agentRoot: .disk(disk), executable: executable)
            }
            if access(initrd, R_OK) == 0 {
                return Firmware(kernel: kernel, agentRoot: .initramfs(initrd), executable: executable)
            }
        }
        throw .invalidInput("no guest firmware (vmlinux and agent-disk.ext4 or agent-initramfs.cpio.gz) in \(candidates.joined(separator: ", ")): build it with 'make firmware' or set KVMRUN_FIRMWARE")
    }

    public static func currentExecutable() -> String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard count > 0 else { return "/proc/self/exe" }
        return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
