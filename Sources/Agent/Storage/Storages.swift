// Kata's Storage entries: a block device (virtio-blk) with a file system, a tmpfs
// ("ephemeral") or a plain directory ("local"), mounted at `mountPoint` in the guest. Mount
// points are reference counted: two containers may name the same storage.
#if canImport(Glibc)
import Glibc
#endif
import CAgent
import Sys

/// One Storage of CreateSandbox/CreateContainer (Kata's agent.proto `Storage`).
public struct StorageRequest: Equatable, Sendable {
    public var driver: String
    public var driverOptions: [String]
    public var source: String
    public var fstype: String
    public var options: [String]
    public var mountPoint: String

    public init(driver: String, driverOptions: [String] = [], source: String, fstype: String, options: [String] = [], mountPoint: String) {
        self.driver = driver
        self.driverOptions = driverOptions
        self.source = source
        self.fstype = fstype
        self.options = options
        self.mountPoint = mountPoint
    }
}

public final class Storages: @unchecked Sendable {
    /// Block-device drivers: Kata's "blk" (virtio-blk), "mmioblk" (virtio-blk over MMIO, what
    /// a microVM has) and "virtio-blk"; the source names the device node (/dev/vda).
    static let blockDrivers: Set<String> = ["blk", "mmioblk", "virtio-blk"]
    public static let handlers = ["blk", "mmioblk", "virtio-blk", "ephemeral", "local"]

    private let monitor = Monitor()
    private var references: [String: Int] = [:]
    /// How long a block device may take to appear (it is normally there at boot).
    var deviceWaitMilliseconds = 5000

    public init() {}

    /// Mounts `storage` (or takes another reference to its mount point). Returns the mount point.
    public func mount(_ storage: StorageRequest) throws(AgentError) -> String {
        let point = storage.mountPoint
        guard point.hasPrefix("/"), !point.split(separator: "/").contains(".."), point != "/" else {
            throw AgentError.invalid("storage mount_point \"\(point)\" must be an absolute path without \"..\"")
        }
        if monitor.withLock({ () -> Bool in
            guard let count = references[point] else { return false }
            references[point] = count + 1
            return true
        }) { return point }
        do {
            try Files.makeDirectories(point)
        } catch {
            throw AgentError(error, while: "storage \(storage.driver) \(storage.source)")
        }
        let options = MountOptions(storage.options)
        switch storage.driver {
        case _ where Self.blockDrivers.contains(storage.driver):
            guard storage.source.hasPrefix("/dev/") else {
                throw AgentError.invalid("storage driver \(storage.driver): source \"\(storage.source)\" must be a device node under /dev")
            }
            try waitForDevice(storage.source)
            try mountCall(storage.source, point, storage.fstype.isEmpty ? "ext4" : storage.fstype, options)
        case "ephemeral":
            try mountCall("tmpfs", point, "tmpfs", options)
        case "local":
            let mode = storage.options.first { $0.hasPrefix("mode=") }.flatMap { UInt32($0.dropFirst(5), radix: 8) } ?? 0o777
            chmod(point, mode_t(mode))
        default:
            throw AgentError(.unimplemented, "storage driver \"\(storage.driver)\" is not supported (supported: \(Self.handlers.joined(separator: ", ")))")
        }
        monitor.withLock { references[point] = 1 }
        Log.info("storage \(storage.driver) \(storage.source) mounted at \(point)")
        return point
    }

    /// Drops one reference; unmounts (lazily) when it was the last.
    public func release(_ point: String) {
        let last = monitor.withLock { () -> Bool in
            guard let count = references[point] else { return false }
            if count > 1 {
                references[point] = count - 1
                return false
            }
            references[point] = nil
            return true
        }
        guard last else { return }
        if umount2(point, KVMRUN_MNT_DETACH) != 0, errno != EINVAL {
            Log.error("storage: umount \(point): errno \(errno)")
        }
        rmdir(point)
    }

    public var mountPoints: [String] { monitor.withLock { references.keys.sorted() } }

    private func waitForDevice(_ path: String) throws(AgentError) {
        var waited = 0
        while !Files.exists(path) {
            guard waited < deviceWaitMilliseconds else {
                throw AgentError(.notFound, "storage: device \(path) did not appear within \(deviceWaitMilliseconds) ms")
            }
            usleep(10_000)
            waited += 10
        }
        // A drive the host swapped a new backing file into (a runtime's pre-created slot) exists
        // before the guest has read its new capacity: wait until the size is not zero.
        let sizeFile = "/sys/class/block/" + (path.split(separator: "/").last.map(String.init) ?? "") + "/size"
        while Files.exists(sizeFile), (readTextFile(sizeFile) ?? "0").split(separator: "\n").first == "0" {
            guard waited < deviceWaitMilliseconds else {
                throw AgentError(.failedPrecondition, "storage: device \(path) still has no capacity after \(deviceWaitMilliseconds) ms")
            }
            usleep(10_000)
            waited += 10
        }
    }

    private func mountCall(_ source: String, _ point: String, _ fstype: String, _ options: MountOptions) throws(AgentError) {
        if Glibc.mount(source, point, fstype, options.flags, options.dataString) != 0 {
            let code = errno
            rmdir(point)
            throw AgentError(SystemError(call: "mount \(source) on \(point) (\(fstype))", errno: code), while: "storage")
        }
    }
}
