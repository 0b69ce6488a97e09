import CKVM
import Sys

/// The vsock host side's own epoll set. The VMM's event loop watches just this one descriptor;
/// when it becomes readable the device drains it with `wait()`. Sockets are registered
/// edge-triggered, so a stream the device cannot serve yet (no rx buffers, no guest credit)
/// costs nothing until new data arrives: the device remembers readiness itself.
final class VsockPoller {
    static let readable: UInt32 = 0x001      // EPOLLIN
    static let writable: UInt32 = 0x004      // EPOLLOUT
    static let error: UInt32 = 0x008         // EPOLLERR
    static let hangUp: UInt32 = 0x010        // EPOLLHUP
    static let readHangUp: UInt32 = 0x2000   // EPOLLRDHUP
    static let edgeTriggered: UInt32 = 1 << 31
    static let batch = 64
    /// Batches one wake-up takes: events beyond stay queued in the epoll set, which stays
    /// readable for the VMM's loop.
    static let batchesPerWake = 4

    let epoll: FileDescriptor

    init() throws(SystemError) {
        epoll = FileDescriptor(try sys("epoll_create1 for vsock") { kvmrun_epoll_create() })
    }

    /// Watches `fd` (edge-triggered) for `events`, reporting `token`.
    func add(_ fd: FileDescriptor, token: UInt64, events: UInt32) throws(SystemError) {
        try sys("epoll_ctl ADD vsock fd \(fd.raw)") {
            kvmrun_epoll_ctl(epoll.raw, fd.raw, 0, events | VsockPoller.edgeTriggered, token)
        }
    }

    func remove(_ fd: FileDescriptor) {
        _ = kvmrun_epoll_del(epoll.raw, fd.raw)
    }

    /// The events pending now, at most `batches` × `batch` of them (does not block).
    func wait(batches: Int) -> [(token: UInt64, events: UInt32)] {
        var result: [(UInt64, UInt32)] = []
        var tokens = [UInt64](repeating: 0, count: VsockPoller.batch)
        var events = [UInt32](repeating: 0, count: VsockPoller.batch)
        for _ in 0..<batches {
            // SAFETY: both arrays hold `batch` elements and at most `batch` are requested.
            let count = kvmrun_epoll_wait(epoll.raw, &tokens, &events, Int32(VsockPoller.batch), 0)
            guard count > 0 else { break }
            for index in 0..<Int(count) { result.append((tokens[index], events[index])) }
            if count < VsockPoller.batch { break }
        }
        return result
    }
}
