#if canImport(Glibc)
import Glibc
#endif
import Sys

/// Containers' memory through the sandbox VM's virtio-mem device: a container's limit is added
/// to the requested size on create and taken off on delete; the guest must plug it in time, or
/// the operation fails (a hotplug the guest does not complete is never ignored).
public enum MemoryHotplug {
    public static let timeoutSeconds = 30

    /// A container's memory limit (bytes, from the spec) as hotplug MiB: rounded up to the
    /// 2 MiB block; 0 when there is no limit.
    public static func mebibytes(forLimit limit: Int64?) -> UInt64 {
        guard let limit, limit > 0 else { return 0 }
        let mib = (UInt64(limit) + (1 << 20) - 1) >> 20
        return (mib + 1) / 2 * 2
    }

    /// Moves the requested size from `current` to `target` MiB and waits until the guest has
    /// plugged exactly that. Throws naming the sizes when the guest does not get there.
    public static func resize(_ control: VMMControl, to target: UInt64, step: String) throws(RuntimeError) {
        let status = try control.hotplugStatus()
        guard target <= status.total_size_mib else {
            throw .failed(step: step, reason: "\(target) MiB is more than the sandbox's hotplug region of \(status.total_size_mib) MiB")
        }
        try control.requestHotplug(mib: target)
        let deadline = MonotonicClock.now + Int64(timeoutSeconds) * 1_000_000_000
        var plugged = status.plugged_size_mib
        while MonotonicClock.now < deadline {
            plugged = try control.hotplugStatus().plugged_size_mib
            if plugged == target { return }
            usleep(50_000)
        }
        throw .failed(step: step, reason: "the guest plugged \(plugged) MiB of the \(target) MiB requested within \(timeoutSeconds) s")
    }
}
