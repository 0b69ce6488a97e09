// Watches each container cgroup's memory.events (inotify: the kernel signals a change of the
// file) and queues the container's id when its oom_kill counter goes up: GetOOMEvent takes
// ids from that queue, blocking until there is one. One thread.
#if canImport(Glibc)
import Glibc
#endif
import CAgent
import Sys

public final class OOMWatcher: @unchecked Sendable {
    private struct Watch {
        let containerID: String
        let cgroup: Cgroup
        var kills: UInt64
    }

    private let inotify: Int32
    private let monitor = Monitor()
    private var watches: [Int32: Watch] = [:]
    private var queue: [String] = []
    private var generation = 0
    /// Queued events kept at most (the oldest go first if nobody asks).
    static let queueLimit = 256

    public init() throws(SystemError) {
        inotify = try sys("inotify_init1") { inotify_init1(Int32(IN_CLOEXEC)) }
        try startAgentThread(name: "oom-watcher") { [self] in run() }
    }

    public func watch(containerID: String, cgroup: Cgroup) {
        let file = cgroup.path + "/memory.events"
        let wd = inotify_add_watch(inotify, file, UInt32(IN_MODIFY))
        guard wd >= 0 else {
            Log.error("oom: cannot watch \(file): errno \(errno) (OOM kills of \(containerID) will not be reported)")
            return
        }
        monitor.withLock { watches[wd] = Watch(containerID: containerID, cgroup: cgroup, kills: cgroup.oomKills) }
    }

    public func unwatch(containerID: String) {
        monitor.withLock {
            for (wd, watch) in watches where watch.containerID == containerID {
                inotify_rm_watch(inotify, wd)
                watches[wd] = nil
            }
        }
    }

    /// Re-reads a container's counter now (at its init's exit, so a kill that raced the
    /// inotify event is queued before WaitProcess answers). Returns whether it went up.
    @discardableResult
    public func check(containerID: String) -> Bool {
        monitor.withLock {
            guard let wd = watches.first(where: { $0.value.containerID == containerID })?.key else { return false }
            return recheck(wd)
        }
    }

    /// The next container id with an OOM kill; blocks until one comes, or nil when
    /// `cancelWaiters` is called (DestroySandbox).
    public func next(isCancelled: () -> Bool = { false }) -> String? {
        monitor.withLock {
            let start = generation
            while queue.isEmpty, generation == start, !isCancelled() {
                _ = monitor.wait(timeoutMilliseconds: 1000) { !queue.isEmpty || generation != start }
            }
            return queue.isEmpty ? nil : queue.removeFirst()
        }
    }

    public func cancelWaiters() {
        monitor.withLock {
            generation += 1
            monitor.broadcast()
        }
    }

    /// Call with the lock held.
    private func recheck(_ wd: Int32) -> Bool {
        guard var watch = watches[wd] else { return false }
        let kills = watch.cgroup.oomKills
        guard kills > watch.kills else { return false }
        watch.kills = kills
        watches[wd] = watch
        if queue.count >= Self.queueLimit { queue.removeFirst() }
        queue.append(watch.containerID)
        monitor.broadcast()
        Log.info("container \(watch.containerID): OOM killer struck (oom_kill=\(kills))")
        return true
    }

    private func run() {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            // SAFETY: reads into the local buffer, at most its size.
            let count = buffer.withUnsafeMutableBytes { read(inotify, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                Log.error("oom: inotify read: errno \(errno)")
                return
            }
            var offset = 0
            let header = MemoryLayout<inotify_event>.size
            while offset + header <= count {
                // SAFETY: a whole inotify_event header lies at `offset` (checked above).
                let event = buffer.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: inotify_event.self) }
                offset += header + Int(event.len)
                monitor.withLock { _ = recheck(event.wd) }
            }
        }
    }
}
