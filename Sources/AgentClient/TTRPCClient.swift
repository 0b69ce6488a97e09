#if canImport(Glibc)
import Glibc
#endif
import AgentProtocol
import Synchronization
import Sys

/// The host side of ttRPC: many calls in flight on one connected stream socket, each waiting
/// for the response with its stream id, each with its own timeout. A reader thread delivers
/// responses in whatever order they come; a response nobody waits for any more (its call timed
/// out) is dropped. The server's bytes are untrusted (a guest agent): frames are bounded by the
/// codec, and whatever does not decode fails only the call it belongs to.
public final class TTRPCClient: Sendable {
    /// Why a call failed, without the caller's context (`AgentClient` adds the call's name and
    /// the container).
    public enum Failure: Error, Equatable, Sendable, CustomStringConvertible {
        /// The server answered with an error status.
        case status(RPCError)
        /// No answer within the call's timeout.
        case timedOut(Duration)
        /// The connection is closed or broke; the reason says how.
        case closed(String)
        /// The request could not be sent (does not encode, exceeds ttRPC's 4 MiB, no stream
        /// ids left).
        case invalidRequest(String)
        /// The answer could not be read (oversize frame, undecodable envelope or message).
        case invalidResponse(String)

        public var description: String {
            switch self {
            case let .status(error): return "\(error)"
            case let .timedOut(after): return "no answer within \(after)"
            case let .closed(reason): return "connection closed: \(reason)"
            case let .invalidRequest(reason): return "request not sent: \(reason)"
            case let .invalidResponse(reason): return "unreadable answer: \(reason)"
            }
        }
    }

    private let core: ClientCore

    /// Starts serving `connection` (a connected stream socket; owned from here on).
    public init(connection: FileDescriptor, readChunk: Int = 64 << 10) throws(SystemError) {
        core = ClientCore(fd: connection, readChunk: readChunk)
        let core = core
        try startThread("the agent client's reader") { core.readLoop() }
    }

    deinit { core.shutdown() }

    /// Calls `method` and waits for its answer at most `timeout` (nil: without limit). The
    /// timeout also goes to the server as the request's `timeout_nano`.
    public func call<Request, Response>(
        _ method: RPCMethod<Request, Response>, _ request: Request, timeout: Duration?,
        metadata: [Ttrpc_KeyValue] = []
    ) throws(Failure) -> Response {
        let deadline = timeout.map { MonotonicClock.deadline(after: $0) }
        // 0 would mean "no deadline" to the server: a timeout rounds up to at least 1 ns.
        let timeoutNanos = timeout.map { max(1, MonotonicClock.nanoseconds($0)) } ?? 0
        let frame: [UInt8]
        do {
            // Stream id 1 is a placeholder: the header is rewritten with the real id when sent.
            frame = try Envelope.requestFrame(streamID: 1, method: method, message: request,
                                              timeoutNanos: timeoutNanos, metadata: metadata)
        } catch {
            throw .invalidRequest(error.message)
        }
        let pending = try core.send(frame, what: method.path, deadline: deadline, timeout: timeout)
        let response = try core.wait(for: pending, deadline: deadline, timeout: timeout)
        if response.hasStatus && response.status.code != StatusCode.ok.rawValue {
            throw .status(RPCError(status: response.status))
        }
        do {
            return try Envelope.decode(Response.self, from: response.payload, what: "\(method.name) response")
        } catch {
            throw .invalidResponse(error.message)
        }
    }

    /// Closes the connection: calls in flight fail with `.closed`, later calls too.
    public func close() { core.shutdown() }

    /// Why the connection is closed, nil while it is open.
    public var closedReason: String? { core.closedReason }
}

/// A call waiting for its response.
final class PendingCall: @unchecked Sendable {
    let streamID: UInt32
    let parking = Parking()
    // Guarded by `parking`.
    var result: Result<Ttrpc_Response, TTRPCClient.Failure>?

    init(streamID: UInt32) { self.streamID = streamID }

    func complete(_ outcome: Result<Ttrpc_Response, TTRPCClient.Failure>) {
        parking.withLock { _ in if result == nil { result = outcome } }
        parking.wakeAll()
    }
}

/// The connection itself, shared by the handle and the reader thread (so dropping the handle
/// shuts the connection down and lets the reader end). Unchecked: `writerBusy` is guarded by
/// `writer`, the rest is immutable or a `Mutex`.
final class ClientCore: @unchecked Sendable {
    struct State {
        var ids = StreamIDAllocator()
        var pending: [UInt32: PendingCall] = [:]
        var closedReason: String?
    }

    let fd: FileDescriptor
    let readChunk: Int
    private let state = Mutex(State())
    /// Taken (with a deadline) while a frame is written, so frames never interleave and stream
    /// ids reach the server in increasing order (the id is taken while holding it).
    private let writer = Parking()
    private var writerBusy = false  // guarded by `writer`
    /// A write that makes no progress for this long means the agent has stopped reading: the
    /// connection is given up (also for calls without a timeout).
    static let maxSendWait: Duration = .seconds(30)

    init(fd: FileDescriptor, readChunk: Int) {
        self.fd = fd
        self.readChunk = readChunk
    }

    var closedReason: String? { state.withLock { $0.closedReason } }

    /// Takes the next stream id, registers the call and writes `frame` with that id, all by
    /// `deadline` (the call's, capped at `maxSendWait` from now).
    func send(_ frame: [UInt8], what: String, deadline callDeadline: Int64?, timeout: Duration?) throws(TTRPCClient.Failure) -> PendingCall {
        let cap = MonotonicClock.deadline(after: Self.maxSendWait)
        let deadline = min(callDeadline ?? cap, cap)
        let timedOut: TTRPCClient.Failure = callDeadline.map { $0 <= cap } == true
            ? .timedOut(timeout ?? .zero)
            : .closed("the agent has read nothing for \(Self.maxSendWait)")
        let acquired = writer.withLock(deadline: deadline) { wait in
            while writerBusy { if !wait() { return false } }
            writerBusy = true
            return true
        }
        guard acquired else {
            if case .closed = timedOut { fail(reason: "the agent has read nothing for \(Self.maxSendWait)") }
            throw timedOut
        }
        defer {
            writer.withLock { _ in writerBusy = false }
            writer.wakeOne()
        }
        let taken: Result<PendingCall, TTRPCClient.Failure> = state.withLock { state in
            if let reason = state.closedReason { return .failure(.closed(reason)) }
            guard let id = state.ids.next() else {
                return .failure(.invalidRequest("no stream ids left on this connection; reconnect"))
            }
            let call = PendingCall(streamID: id)
            state.pending[id] = call
            return .success(call)
        }
        let call = try taken.get()
        var bytes = frame
        let id = call.streamID
        FrameHeader.setStreamID(id, in: &bytes)
        var sent = 0
        do throws(SystemError) {
            try StreamSocket.sendAll(fd.raw, bytes, deadline: deadline, sent: &sent, what: what)
        } catch {
            _ = state.withLock { $0.pending.removeValue(forKey: id) }
            // A frame cut short leaves the stream unusable; one never started does not.
            if error.errno == ETIMEDOUT && sent == 0, case .timedOut = timedOut { throw timedOut }
            let reason = error.errno == ETIMEDOUT ? "the agent has stopped reading: \(error)" : "\(error)"
            fail(reason: reason)
            shutdownSocket()
            throw .closed(reason)
        }
        return call
    }

    func wait(for call: PendingCall, deadline: Int64?, timeout: Duration?) throws(TTRPCClient.Failure) -> Ttrpc_Response {
        let outcome = call.parking.withLock(deadline: deadline) { wait in
            while call.result == nil {
                if !wait() { break }
            }
            return call.result
        }
        if let outcome { return try outcome.get() }
        // Timed out: forget the call, unless its answer came in meanwhile.
        _ = state.withLock { $0.pending.removeValue(forKey: call.streamID) }
        if let late = call.parking.withLock({ _ in call.result }) { return try late.get() }
        throw .timedOut(timeout ?? .zero)
    }

    /// Fails every waiting call and refuses new ones.
    func fail(reason: String) {
        let calls = state.withLock { state -> [PendingCall] in
            if state.closedReason == nil { state.closedReason = reason }
            defer { state.pending.removeAll() }
            return Array(state.pending.values)
        }
        for call in calls { call.complete(.failure(.closed(reason))) }
    }

    func shutdown() {
        fail(reason: "closed by the client")
        shutdownSocket()
    }

    private func shutdownSocket() {
        _ = Glibc.shutdown(fd.raw, Int32(SHUT_RDWR))
    }

    func readLoop() {
        let end = FrameDecoder.readFrames(chunk: readChunk, read: { buffer in
            try StreamSocket.receive(fd.raw, into: &buffer, what: "the agent connection")
        }, handle: { decoded in
            switch decoded {
            case let .success(frame):
                deliver(frame)
            case let .failure(error):
                if case let .oversize(streamID, _, _, _) = error {
                    take(streamID)?.complete(.failure(.invalidResponse(error.description)))
                }
            }
        })
        switch end {
        case .closed: fail(reason: "the agent closed the connection")
        case let .truncated(error): fail(reason: "the agent closed the connection (\(error))")
        case let .failed(error): fail(reason: "\(error)")
        }
    }

    private func take(_ streamID: UInt32) -> PendingCall? {
        state.withLock { $0.pending.removeValue(forKey: streamID) }
    }

    /// Hands a response to its call. Frames for no waiting call (timed out, or made up by the
    /// peer) and frame types a server must not send are dropped.
    private func deliver(_ frame: Frame) {
        guard frame.type == .response, let call = take(frame.streamID) else { return }
        do {
            call.complete(.success(try Envelope.decodeResponse(frame.payload)))
        } catch {
            call.complete(.failure(.invalidResponse(error.message)))
        }
    }
}
