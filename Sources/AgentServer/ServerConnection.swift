#if canImport(Glibc)
import Glibc
#endif
import AgentProtocol
import Synchronization
import Sys

/// One client connection: the reader (on the thread that called `serve(connection:)`) decodes
/// frames and hands requests to the pool; handlers answer through `send`, one whole frame at a
/// time. Handlers hold a reference, so the fd stays open (and its number cannot be reused)
/// until the last of them has answered.
final class ServerConnection: Sendable {
    let fd: FileDescriptor
    let server: TTRPCServer
    let cancellation = Cancellation()
    /// True once a write failed: later answers are dropped.
    private let broken = Mutex(false)

    init(fd: FileDescriptor, server: TTRPCServer) {
        self.fd = fd
        self.server = server
    }

    func run() {
        var rule = StreamIDRule()
        let end = FrameDecoder.readFrames(chunk: server.limits.readChunk, read: { buffer in
            try StreamSocket.receive(fd.raw, into: &buffer, what: "agent connection")
        }, handle: { decoded in
            switch decoded {
            case let .success(frame):
                handle(frame, rule: &rule)
            case let .failure(error):
                // Oversize: the payload is being skipped; tell the client which stream.
                if case let .oversize(streamID, _, _, _) = error {
                    answer(streamID, RPCError(.resourceExhausted, error.description))
                }
            }
        })
        switch end {
        case .closed: break
        case let .truncated(error): server.log("\(error)")
        case let .failed(error): server.log("\(error); connection dropped")
        }
        cancellation.cancel()
    }

    private func handle(_ frame: Frame, rule: inout StreamIDRule) {
        let id = frame.streamID
        guard frame.type == .request else {
            let what = frame.type == .data ? "data frame: only unary calls are served" : "\(frame.type) frame from a client"
            answer(id, RPCError(.invalidArgument, "stream \(id): unexpected \(what)"))
            return
        }
        if let refusal = rule.admit(id) {
            answer(id, refusal)
            return
        }
        let request: Ttrpc_Request
        do {
            request = try Envelope.decodeRequest(frame.payload)
        } catch {
            answer(id, error)
            return
        }
        guard !frame.flags.contains(.remoteOpen) else {
            answer(id, RPCError(.unimplemented, "\(request.service)/\(request.method): streaming requests are not served"))
            return
        }
        let handler: TTRPCServer.Handler
        switch server.route(service: request.service, method: request.method) {
        case let .success(found): handler = found
        case let .failure(error):
            answer(id, error)
            return
        }
        let deadline = request.timeoutNano > 0 ? MonotonicClock.deadline(after: .nanoseconds(request.timeoutNano)) : nil
        let context = CallContext(service: request.service, method: request.method, streamID: id,
                                  metadata: request.metadata, deadline: deadline, cancellation: cancellation)
        let payload = request.payload
        let accepted = server.pool.submit { [self] in
            guard !context.isDeadlinePassed else {
                let error = RPCError(.deadlineExceeded, "\(request.method): the deadline of \(request.timeoutNano) ns passed before it started")
                send(Envelope.responseFrame(streamID: id, result: .failure(error)))
                return
            }
            send(Envelope.responseFrame(streamID: id, result: handler(payload, context)))
        }
        if !accepted {
            answer(id, RPCError(.resourceExhausted, "\(request.method): \(server.pool.maxThreads) requests are already in flight"))
        }
    }

    private func answer(_ streamID: UInt32, _ error: RPCError) {
        send(Envelope.responseFrame(streamID: streamID, result: .failure(error)))
    }

    /// Writes one whole frame. After a failed write (the client is gone, or has read nothing
    /// for `Limits.sendTimeout`) the connection is shut down: the reader ends, handlers see
    /// the cancellation, later answers are dropped.
    func send(_ frame: [UInt8]) {
        broken.withLock { broken in
            guard !broken else { return }
            do throws(SystemError) {
                let deadline = MonotonicClock.deadline(after: server.limits.sendTimeout)
                var sent = 0
                try StreamSocket.sendAll(fd.raw, frame, deadline: deadline, sent: &sent, what: "agent response")
            } catch {
                broken = true
                if error.errno != EPIPE && error.errno != ECONNRESET { server.log("\(error); connection shut down") }
                cancellation.cancel()
                _ = shutdown(fd.raw, Int32(SHUT_RDWR))
            }
        }
    }
}
