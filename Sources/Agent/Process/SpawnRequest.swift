// Everything the process-creation shim needs, resolved: numbers and strings only, no spec.
// Built from an OCI spec by ContainerSetup (or by tests directly).

public struct SpawnRequest: Sendable {
    public struct Mount: Sendable, Equatable {
        public var source: String?
        public var target: String
        public var fstype: String?
        public var data: String?
        public var flags: UInt
        public var propagation: UInt
        public init(source: String?, target: String, fstype: String?, data: String?, flags: UInt, propagation: UInt = 0) {
            self.source = source
            self.target = target
            self.fstype = fstype
            self.data = data
            self.flags = flags
            self.propagation = propagation
        }
    }

    public struct Device: Sendable, Equatable {
        public var path: String
        public var mode: UInt32
        public var major: UInt32
        public var minor: UInt32
        public var uid: UInt32
        public var gid: UInt32
        public init(path: String, mode: UInt32, major: UInt32, minor: UInt32, uid: UInt32, gid: UInt32) {
            self.path = path
            self.mode = mode
            self.major = major
            self.minor = minor
            self.uid = uid
            self.gid = gid
        }
    }

    public struct Rlimit: Sendable, Equatable {
        public var resource: Int32
        public var soft: UInt64
        public var hard: UInt64
        public init(resource: Int32, soft: UInt64, hard: UInt64) {
            self.resource = resource
            self.soft = soft
            self.hard = hard
        }
    }

    public struct Capabilities: Sendable, Equatable {
        public var bounding: UInt64 = 0
        public var effective: UInt64 = 0
        public var permitted: UInt64 = 0
        public var inheritable: UInt64 = 0
        public var ambient: UInt64 = 0
        public init() {}
    }

    public enum Stdio: Sendable {
        /// Fds to put on 0, 1, 2 (the caller keeps its own ends).
        case fds(stdin: Int32, stdout: Int32, stderr: Int32)
        /// A pty opened in the container; its master comes back in `Spawned.console`.
        case terminal(rows: UInt16, columns: UInt16)
    }

    // Where.
    public var cloneFlags: UInt64 = 0
    public var cgroupFD: Int32 = -1
    /// Join mode: fds of /proc/PID/ns/{ipc,uts,net,pid,cgroup,mnt} (-1 to skip each).
    public var joinNamespaces: [Int32]? = nil

    // File system (new containers).
    public var rootfs: String? = nil
    public var rootfsReadonly = false
    public var rootfsPropagation: UInt = 0
    public var mounts: [Mount] = []
    public var devices: [Device] = []
    public var defaultDevices = false
    public var maskedPaths: [String] = []
    public var readonlyPaths: [String] = []
    public var hostname: String? = nil
    public var sysctls: [(path: String, value: String)] = []

    // Process.
    public var rlimits: [Rlimit] = []
    public var oomScoreAdj: Int32? = nil
    public var uid: UInt32 = 0
    public var gid: UInt32 = 0
    public var groups: [UInt32] = []
    public var capabilities: Capabilities? = nil
    public var noNewPrivileges = false
    public var cwd = "/"
    public var args: [String]
    public var env: [String] = []
    public var stdio: Stdio
    /// Stop after set-up and wait for `PendingSpawn.start()` (a container's init).
    public var waitForStart = false

    public init(args: [String], stdio: Stdio) {
        self.args = args
        self.stdio = stdio
    }

    /// PATH from `env`, used to find args[0] when it has no '/'.
    public var pathVariable: String? {
        env.last(where: { $0.hasPrefix("PATH=") }).map { String($0.dropFirst(5)) }
    }
}

/// A failed step of process creation, as the child reported it: "exec /bin/nope: No such
/// file or directory", "mount /proc: Operation not permitted".
public struct SpawnError: Error, CustomStringConvertible, Equatable, Sendable {
    public let step: String
    public let path: String
    public let errno: Int32

    public init(step: String, path: String, errno: Int32) {
        self.step = step
        self.path = path
        self.errno = errno
    }

    public var description: String {
        let reason = String(cString: strerrorText(errno))
        if step == "lookup" { return "exec \"\(path)\": executable file not found in $PATH" }
        return path.isEmpty ? "\(step): \(reason)" : "\(step) \(path): \(reason)"
    }
}

#if canImport(Glibc)
import Glibc
func strerrorText(_ code: Int32) -> UnsafeMutablePointer<CChar> { strerror(code) }
#endif
