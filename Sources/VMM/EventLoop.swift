#if canImport(Glibc)
import Glibc
#endif
import CKVM
import Sys

/// One epoll loop for the VMM's file descriptors (termination signals, the stop eventfd,
/// console input; device queues later). Subscribers are closures keyed by small tokens. Runs on
/// the thread that calls `run`; handlers must not block.
public final class EventLoop {
    public typealias Handler = (_ events: UInt32) -> Void

    public static let readable: UInt32 = 0x001  // EPOLLIN
    public static let writable: UInt32 = 0x004  // EPOLLOUT
    public static let hangUp: UInt32 = 0x010     // EPOLLHUP
    public static let error: UInt32 = 0x008      // EPOLLERR

    private let epoll: FileDescriptor
    private var handlers: [UInt64: (fd: Int32, handler: Handler)] = [:]
    private var nextToken: UInt64 = 1
    private var stopped = false

    public init() throws(SystemError) {
        epoll = FileDescriptor(try sys("epoll_create1") { kvmrun_epoll_create() })
    }

    /// Calls `handler` whenever `fd` has any of `events`. Returns the subscription's token.
    @discardableResult
    public func subscribe(fd: Int32, events: UInt32 = EventLoop.readable, _ handler: @escaping Handler) throws(SystemError) -> UInt64 {
        let token = nextToken
        nextToken += 1
        try sys("epoll_ctl ADD fd \(fd)") { kvmrun_epoll_ctl(epoll.raw, fd, 0, events, token) }
        handlers[token] = (fd, handler)
        return token
    }

    /// Stops watching the subscription `token`.
    public func unsubscribe(_ token: UInt64) {
        guard let entry = handlers.removeValue(forKey: token) else { return }
        _ = kvmrun_epoll_del(epoll.raw, entry.fd)
    }

    /// A switch for subscription `token`'s events that may be flipped from any thread (it only
    /// calls epoll_ctl, which is thread-safe); nil if there is no such subscription.
    public func interest(_ token: UInt64) -> Interest? {
        handlers[token].map { Interest(epoll: epoll, fd: $0.fd, token: token) }
    }

    /// See `interest(_:)`. Keeps the epoll descriptor open while it exists.
    public struct Interest: Sendable {
        let epoll: FileDescriptor
        let fd: Int32
        let token: UInt64

        /// Watches for `events` from now on; 0 pauses the subscription (EPOLLERR and EPOLLHUP
        /// are still reported).
        public func set(_ events: UInt32) throws(SystemError) {
            try sys("epoll_ctl MOD fd \(fd)") { kvmrun_epoll_ctl(epoll.raw, fd, 1, events, token) }
        }
    }

    /// Drops every subscription. Handlers often capture the loop (to stop it) or the devices
    /// that subscribed; dropping them when the machine is done breaks those cycles.
    public func unsubscribeAll() {
        for token in Array(handlers.keys) { unsubscribe(token) }
    }

    /// Makes `run` return after the current round of handlers.
    public func stop() { stopped = true }

    /// Dispatches events until `stop()`. `timeoutMilliseconds` bounds each wait so `idle` runs
    /// periodically (for work without a file descriptor, like retrying console input).
    public func run(timeoutMilliseconds: Int32 = -1, idle: () -> Void = {}) throws(SystemError) {
        var tokens = [UInt64](repeating: 0, count: 16)
        var events = [UInt32](repeating: 0, count: 16)
        while !stopped {
            let count = try sys("epoll_wait") {
                // SAFETY: both arrays hold 16 elements and at most 16 are requested.
                kvmrun_epoll_wait(epoll.raw, &tokens, &events, 16, timeoutMilliseconds)
            }
            for index in 0..<Int(count) {
                handlers[tokens[index]]?.handler(events[index])
            }
            idle()
        }
    }
}
