// Mount options as runc reads them: flag words ("ro", "nosuid", "rbind") become MS_* flags,
// propagation words ("rslave") a propagation change, anything else ("mode=755", "size=64m")
// the file-system data string.
import CAgent

public struct MountOptions: Equatable, Sendable {
    public var flags: UInt = 0
    public var propagation: UInt = 0
    public var data: [String] = []

    public var isBind: Bool { flags & KVMRUN_MS_BIND != 0 }
    public var dataString: String? { data.isEmpty ? nil : data.joined(separator: ",") }

    /// (set, clear) for each flag word.
    static let flagWords: [String: (set: UInt, clear: UInt)] = [
        "defaults": (0, 0),
        "ro": (KVMRUN_MS_RDONLY, 0), "rw": (0, KVMRUN_MS_RDONLY),
        "nosuid": (KVMRUN_MS_NOSUID, 0), "suid": (0, KVMRUN_MS_NOSUID),
        "nodev": (KVMRUN_MS_NODEV, 0), "dev": (0, KVMRUN_MS_NODEV),
        "noexec": (KVMRUN_MS_NOEXEC, 0), "exec": (0, KVMRUN_MS_NOEXEC),
        "sync": (KVMRUN_MS_SYNCHRONOUS, 0), "async": (0, KVMRUN_MS_SYNCHRONOUS),
        "dirsync": (KVMRUN_MS_DIRSYNC, 0),
        "remount": (KVMRUN_MS_REMOUNT, 0),
        "mand": (KVMRUN_MS_MANDLOCK, 0), "nomand": (0, KVMRUN_MS_MANDLOCK),
        "atime": (0, KVMRUN_MS_NOATIME), "noatime": (KVMRUN_MS_NOATIME, 0),
        "diratime": (0, KVMRUN_MS_NODIRATIME), "nodiratime": (KVMRUN_MS_NODIRATIME, 0),
        "relatime": (KVMRUN_MS_RELATIME, 0), "norelatime": (0, KVMRUN_MS_RELATIME),
        "strictatime": (KVMRUN_MS_STRICTATIME, 0), "nostrictatime": (0, KVMRUN_MS_STRICTATIME),
        "lazytime": (KVMRUN_MS_LAZYTIME, 0), "nolazytime": (0, KVMRUN_MS_LAZYTIME),
        "bind": (KVMRUN_MS_BIND, 0), "rbind": (KVMRUN_MS_BIND | KVMRUN_MS_REC, 0),
    ]

    static let propagationWords: [String: UInt] = [
        "private": KVMRUN_MS_PRIVATE, "rprivate": KVMRUN_MS_PRIVATE | KVMRUN_MS_REC,
        "shared": KVMRUN_MS_SHARED, "rshared": KVMRUN_MS_SHARED | KVMRUN_MS_REC,
        "slave": KVMRUN_MS_SLAVE, "rslave": KVMRUN_MS_SLAVE | KVMRUN_MS_REC,
        "unbindable": KVMRUN_MS_UNBINDABLE, "runbindable": KVMRUN_MS_UNBINDABLE | KVMRUN_MS_REC,
    ]

    public init(_ options: [String]) {
        for option in options where !option.isEmpty {
            if let word = Self.flagWords[option] {
                flags = (flags | word.set) & ~word.clear
            } else if let propagation = Self.propagationWords[option] {
                self.propagation = propagation
            } else {
                data.append(option)
            }
        }
    }

    /// A propagation word alone (linux.rootfsPropagation), or nil if unknown.
    public static func propagation(_ word: String) -> UInt? { propagationWords[word] }
}
