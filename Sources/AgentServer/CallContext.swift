#if canImport(Glibc)
import Glibc
#endif
import AgentProtocol
import Synchronization
import Sys

/// What a handler knows about the call it serves besides the request: who asked, until when,
/// and whether anyone is still listening.
///
/// A handler that blocks (WaitProcess, ReadStdout, GetOOMEvent) should wait in `poll(2)` on
/// its own fds plus `cancellationFD`, with `pollTimeout` as the timeout, and give up (throw)
/// once `isCancelled` is true: the client has gone away or the call's deadline has passed.
public struct CallContext: Sendable {
    public let service: String
    public let method: String
    public let streamID: UInt32
    public let metadata: [Ttrpc_KeyValue]
    /// The request's deadline on `MonotonicClock` (nanoseconds), from its `timeout_nano`; nil
    /// when it has none.
    public let deadline: Int64?
    let connection: Cancellation

    public init(service: String, method: String, streamID: UInt32, metadata: [Ttrpc_KeyValue] = [],
                deadline: Int64? = nil, cancellation: Cancellation = Cancellation()) {
        self.service = service
        self.method = method
        self.streamID = streamID
        self.metadata = metadata
        self.deadline = deadline
        self.connection = cancellation
    }

    /// The client's connection has closed.
    public var isConnectionClosed: Bool { connection.isCancelled }

    public var isDeadlinePassed: Bool {
        guard let deadline else { return false }
        return MonotonicClock.now >= deadline
    }

    /// Nobody will read the answer: the connection closed or the deadline passed.
    public var isCancelled: Bool { isConnectionClosed || isDeadlinePassed }

    /// Readable (end of file) once the connection has closed; never read from it, only poll.
    public var cancellationFD: Int32 { connection.fd }

    /// Milliseconds until the deadline for `poll(2)` (at least 0), -1 without a deadline.
    public var pollTimeout: Int32 {
        guard let deadline else { return -1 }
        let left = deadline - MonotonicClock.now
        return left <= 0 ? 0 : Int32(clamping: (left + 999_999) / 1_000_000)
    }
}

/// A one-way flag with a pollable fd: one end of a socket pair, whose other end closes when
/// the flag is set, so the fd reads end of file from then on.
public final class Cancellation: Sendable {
    private let flag = Atomic<Bool>(false)
    private let readEnd: Int32
    private let writeEnd = Atomic<Int32>(-1)

    public init() {
        var ends: [Int32] = [-1, -1]
        // SOCK_CLOEXEC makes both ends close-on-exec atomically (children of the agent must not
        // inherit them).
        if socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &ends) != 0 {
            ends = [-1, -1]
        }
        readEnd = ends[0]
        writeEnd.store(ends[1], ordering: .relaxed)
    }

    deinit {
        cancel()
        if readEnd >= 0 { close(readEnd) }
    }

    public var isCancelled: Bool { flag.load(ordering: .acquiring) }

    /// -1 if the process was out of fds when this was made (then only the flag works).
    public var fd: Int32 { readEnd }

    /// Sets the flag and wakes pollers of `fd`. Repeatable.
    public func cancel() {
        flag.store(true, ordering: .releasing)
        let end = writeEnd.exchange(-1, ordering: .acquiringAndReleasing)
        if end >= 0 { close(end) }
    }
}
