// OCI specs (Kata's protobuf form) for test containers: a busybox root file system, the usual
// mounts (/proc, a tmpfs /dev with devpts, /dev/shm), new PID, mount, IPC and UTS namespaces.
import AgentProtocol

public enum ContainerSpecs {
    public struct Options: Sendable {
        public var terminal = false
        public var rows: UInt32 = 24
        public var columns: UInt32 = 80
        public var hostname = ""
        public var memoryLimit: Int64 = 0
        public var pidsLimit: Int64 = 0
        public var env = ["PATH=/bin:/sbin:/usr/bin", "TERM=xterm"]
        public var cwd = "/"
        public init() {}
    }

    public static func process(_ args: [String], options: Options = Options()) -> Grpc_Process {
        var process = Grpc_Process()
        process.args = args
        process.env = options.env
        process.cwd = options.cwd
        process.terminal = options.terminal
        if options.terminal {
            var size = Grpc_Box()
            size.height = options.rows
            size.width = options.columns
            process.consoleSize = size
        }
        process.user = Grpc_User()
        return process
    }

    public static func spec(rootfs: String, args: [String], options: Options = Options()) -> Grpc_Spec {
        var spec = Grpc_Spec()
        spec.version = "1.1.0"
        spec.process = process(args, options: options)
        var root = Grpc_Root()
        root.path = rootfs
        spec.root = root
        spec.hostname = options.hostname
        spec.mounts = [
            mount("/proc", "proc", "proc", ["nosuid", "noexec", "nodev"]),
            mount("/dev", "tmpfs", "tmpfs", ["nosuid", "strictatime", "mode=755", "size=65536k"]),
            mount("/dev/pts", "devpts", "devpts", ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]),
            mount("/dev/shm", "tmpfs", "shm", ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]),
            mount("/tmp", "tmpfs", "tmpfs", ["nosuid", "nodev", "mode=1777"]),
        ]
        var linux = Grpc_Linux()
        linux.namespaces = ["pid", "mount", "ipc", "uts"].map { type in
            var namespace = Grpc_LinuxNamespace()
            namespace.type = type
            return namespace
        }
        linux.maskedPaths = ["/proc/kcore", "/proc/keys", "/proc/timer_list"]
        linux.readonlyPaths = ["/proc/sys", "/proc/sysrq-trigger"]
        var resources = Grpc_LinuxResources()
        if options.memoryLimit > 0 {
            var memory = Grpc_LinuxMemory()
            memory.limit = options.memoryLimit
            resources.memory = memory
        }
        if options.pidsLimit > 0 {
            var pids = Grpc_LinuxPids()
            pids.limit = options.pidsLimit
            resources.pids = pids
        }
        linux.resources = resources
        spec.linux = linux
        return spec
    }

    static func mount(_ destination: String, _ type: String, _ source: String, _ options: [String]) -> Grpc_Mount {
        var mount = Grpc_Mount()
        mount.destination = destination
        mount.type = type
        mount.source = source
        mount.options = options
        return mount
    }

    /// A virtio-blk ext4 image as Kata's runtime passes a container's rootfs.
    public static func blockStorage(device: String, mountPoint: String) -> Grpc_Storage {
        var storage = Grpc_Storage()
        storage.driver = "mmioblk"
        storage.source = device
        storage.fstype = "ext4"
        storage.mountPoint = mountPoint
        return storage
    }
}
