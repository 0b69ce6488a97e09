#if canImport(Glibc)
import Glibc
#endif
import AgentClient
import AgentProtocol
import AgentServer
import FoundationEssentials
import Synchronization
import Sys
import Testing

/// The VMM's side of the hybrid-vsock handshake, played on a real Unix socket: reads
/// `CONNECT <port>\n`, answers as told, and for "OK" hands the stream to an agent server, as the
/// VMM hands it to the guest's vsock connection. Tests unlink `path` when done (the double's
/// thread may outlive them).
final class VsockDouble: @unchecked Sendable {
    enum Answer { case ok, text(String), close, silent }

    let path: String
    let listener: FileDescriptor
    let received = Mutex<String>("")

    init(_ name: String, answer: Answer, server: TTRPCServer) throws {
        path = Plumbing.socketPath(name)
        listener = try Plumbing.listen(path)
        let listener = listener
        try startThread("vsock double") { [self] in
            let fd = accept(listener.raw, nil, nil)
            guard fd >= 0 else { return }
            let stream = FileDescriptor(fd)
            var line: [UInt8] = []
            var byte: [UInt8] = [0]
            while line.last != UInt8(ascii: "\n"), (try? StreamSocket.receive(fd, into: &byte, what: "double")) == 1 {
                line.append(byte[0])
            }
            received.withLock { $0 = String(decoding: line, as: UTF8.self) }
            switch answer {
            case .ok:
                try? StreamSocket.sendAll(fd, Array("OK 1073741824\n".utf8), what: "double")
                server.serve(connection: stream)
            case let .text(text):
                try? StreamSocket.sendAll(fd, Array(text.utf8), what: "double")
                usleep(200_000)
            case .close:
                stream.close()
            case .silent:
                usleep(3_000_000)
            }
        }
    }

}

@Suite("agent client: hybrid-vsock handshake and connection life")
struct ConnectionTests {
    @Test("CONNECT 1024 / OK <port>, then the stream is the agent's")
    func handshake() throws {
        let double = try VsockDouble("ok", answer: .ok, server: ServerClientTests.healthServer())
        defer { unlink(double.path) }
        let client = try AgentClient.connect(hybridVsock: double.path)
        #expect(try client.check().status == .serving)
        #expect(double.received.withLock { $0 } == "CONNECT 1024\n")
    }

    @Test("the VMM answering anything but OK is an error naming the step and the answer")
    func refused() throws {
        let double = try VsockDouble("refused", answer: .text("NO SUCH PORT\n"), server: ServerClientTests.healthServer())
        defer { unlink(double.path) }
        #expect(throws: AgentError.connect(path: double.path, port: 1024, step: "CONNECT 1024",
                                           reason: #"the VMM answered "NO SUCH PORT\n" instead of "OK <port>""#)) {
            try AgentClient.connect(hybridVsock: double.path)
        }
    }

    @Test("the VMM closing (nobody listens on the port) or staying silent are named errors")
    func closedOrSilent() throws {
        let closing = try VsockDouble("closing", answer: .close, server: ServerClientTests.healthServer())
        defer { unlink(closing.path) }
        let closed = agentError { _ = try AgentClient.connect(hybridVsock: closing.path, port: 1025) }
        do {
            #expect(closed?.description.hasPrefix("agent connection through \(closing.path) to vsock port 1025: read the answer to CONNECT 1025: the VMM closed the connection") == true, "\(String(describing: closed))")
        }
        let silent = try VsockDouble("silent", answer: .silent, server: ServerClientTests.healthServer())
        defer { unlink(silent.path) }
        #expect(throws: AgentError.connect(path: silent.path, port: 1024, step: "read the answer to CONNECT 1024",
                                           reason: "no answer within 0.3 seconds")) {
            try AgentClient.connect(hybridVsock: silent.path, connectTimeout: .milliseconds(300))
        }
        let missing = Plumbing.socketPath("nobody")
        let absent = agentError { _ = try AgentClient.connect(hybridVsock: missing) }?.description ?? "no error"
        #expect(absent.contains("connect to the VMM's vsock socket") && absent.contains("ENOENT"), "\(absent)")
    }

    @Test("a client that disconnects mid-call: the handler sees it, the server serves the next connection")
    func disconnectMidCall() throws {
        let server = ServerClientTests.healthServer()
        let entered = Latch(1)
        let noticed = Latch(1)
        server.register(AgentRPC.waitProcess) { _, context in
            entered.countDown()
            var entry = pollfd(fd: context.cancellationFD, events: Int16(POLLIN), revents: 0)
            _ = poll(&entry, 1, 10_000)
            if context.isConnectionClosed { noticed.countDown() }
            throw RPCError(.cancelled, "client went away")
        }
        let path = Plumbing.socketPath("listener")
        let listener = try Plumbing.listen(path)
        defer { unlink(path) }
        try startThread("test listener") { _ = try? server.serve(listener: listener) }

        let first = try AgentClient(connection: try StreamSocket.connectUnix(path))
        let failed = Mutex<AgentError?>(nil)
        let done = Latch(1)
        try startThread("the call cut short") {
            let error = agentError { _ = try first.waitProcess(.with { $0.containerID = "c"; $0.execID = "p" }) }
            failed.withLock { $0 = error }
            done.countDown()
        }
        #expect(entered.wait(timeout: .seconds(10)))
        first.close()
        #expect(done.wait(timeout: .seconds(10)))
        #expect(failed.withLock { $0 } == .connection("WaitProcess", container: "c", reason: "connection closed: closed by the client"))
        #expect(noticed.wait(timeout: .seconds(10)), "the handler did not see the disconnect")

        let second = try AgentClient(connection: try StreamSocket.connectUnix(path))
        #expect(try second.check().status == .serving)
    }
}

private func send(_ fd: Int32, _ bytes: [UInt8]) { try? StreamSocket.sendAll(fd, bytes, what: "hostile") }

/// The client against a server that misbehaves: it must fail the call it concerns, nothing more.
@Suite("agent client: a hostile agent")
struct HostileAgentTests {
    /// A server end played by hand: reads one request frame, then runs `reply`.
    static func client(_ reply: @escaping @Sendable (_ fd: Int32, _ request: Frame) -> Void) throws -> AgentClient {
        let (serverEnd, clientEnd) = try Plumbing.socketPair()
        try startThread("hostile agent") {
            var decoder = FrameDecoder()
            var buffer = [UInt8](repeating: 0, count: 4096)
            while let count = try? StreamSocket.receive(serverEnd.raw, into: &buffer, what: "hostile"), count > 0 {
                decoder.append(Array(buffer[0..<count]))
                while let frame = try? decoder.next() { reply(serverEnd.raw, frame) }
            }
        }
        return try AgentClient(connection: clientEnd, defaultTimeout: .seconds(5))
    }


    @Test("answers on other stream ids are dropped; an oversize answer fails only its call")
    func wrongAndOversize() throws {
        let client = try Self.client { fd, request in
            // A response for a stream nobody asked on, then an oversize frame on the right one,
            // with its payload, then (for the next call) a proper answer.
            if request.streamID == 1 {
                send(fd, Envelope.responseFrame(streamID: 99, result: .success([])))
                send(fd, FrameHeader(length: UInt32(TTRPC.maxPayload + 1), streamID: 1, type: .response).encoded)
                send(fd, [UInt8](repeating: 0, count: TTRPC.maxPayload + 1))
            } else {
                var health = Grpc_HealthCheckResponse()
                health.status = .serving
                send(fd, Envelope.responseFrame(streamID: request.streamID, result: .success(try! health.serializedBytes())))
            }
        }
        let oversize = agentError { _ = try client.check() }
        guard case let .connection(call, nil, reason)? = oversize else {
            Issue.record("expected a connection error, got \(String(describing: oversize))")
            return
        }
        #expect(call == "Check" && reason.contains("exceeds the 4194304-byte limit"), "\(reason)")
        #expect(try client.check().status == .serving)
    }

    @Test("an answer that does not decode fails its call; the agent closing mid-call fails the rest")
    func undecodableThenClosed() throws {
        let client = try Self.client { fd, request in
            if request.streamID == 1 {
                // Field 1 (status), length-delimited, declaring 127 bytes that never come.
                send(fd, FrameHeader(length: 2, streamID: 1, type: .response).encoded + [0x0A, 0x7F])
            } else {
                shutdown(fd, Int32(SHUT_RDWR))
            }
        }
        #expect(throws: AgentError.self) { try client.check() }
        #expect(agentError { _ = try client.statsContainer(.with { $0.containerID = "s1" }) }
            == .connection("StatsContainer", container: "s1", reason: "connection closed: the agent closed the connection"))
        // Closed for good: later calls fail at once.
        #expect(throws: AgentError.connection("Check", container: nil, reason: "connection closed: the agent closed the connection")) {
            try client.check()
        }
    }

    @Test("an agent that stops reading: a big request times out and gives the connection up; a call queued behind it keeps its own timeout")
    func agentStopsReading() throws {
        let (agentEnd, clientEnd) = try Plumbing.socketPair()
        defer { agentEnd.close() }
        let client = try AgentClient(connection: clientEnd, defaultTimeout: .seconds(5))
        let big = Grpc_WriteStreamRequest.with {
            $0.containerID = "w"
            $0.data = Data(count: 3 << 20)
        }
        let bigError = Mutex<AgentError?>(nil)
        let done = Latch(1)
        try startThread("big write") {
            let error = agentError { _ = try client.writeStdin(big, timeout: .after(.seconds(2))) }
            bigError.withLock { $0 = error }
            done.countDown()
        }
        usleep(100_000)
        // The writer is busy with the big frame: this call cannot even start; its own 200 ms hold.
        let started = MonotonicClock.now
        #expect(agentError { _ = try client.check(timeout: .after(.milliseconds(200))) }
            == .timeout("Check", container: nil, after: .milliseconds(200)))
        #expect(MonotonicClock.now - started < 1_500_000_000)
        #expect(done.wait(timeout: .seconds(10)))
        let error = bigError.withLock { $0 }
        guard case let .connection("WriteStdin", "w", reason)? = error else {
            Issue.record("expected a connection error, got \(String(describing: error))")
            return
        }
        #expect(reason.contains("the agent has stopped reading"), "\(reason)")
        // The stream was cut inside a frame: the connection is given up for good.
        guard case .connection? = agentError({ _ = try client.check() }) else {
            Issue.record("the connection was not given up")
            return
        }
    }
}

@Suite("agent server: a client that stops reading")
struct StuckClientTests {
    @Test("responses that cannot go out within sendTimeout shut the connection down; the next connection is served")
    func clientStopsReading() throws {
        var limits = TTRPCServer.Limits()
        limits.sendTimeout = .milliseconds(300)
        let server = ServerClientTests.healthServer(limits)
        server.register(AgentRPC.readStderr) { request, _ in
            .with { $0.data = Data(count: Int(request.len)) }
        }
        let path = Plumbing.socketPath("stuck")
        let listener = try Plumbing.listen(path)
        defer { unlink(path) }
        try startThread("stuck listener") { _ = try? server.serve(listener: listener) }
        // A client that asks for 3 MiB answers and never reads them.
        let stuck = try StreamSocket.connectUnix(path)
        for id in stride(from: UInt32(1), to: 16, by: 2) {
            let frame = try Envelope.requestFrame(streamID: id, method: AgentRPC.readStderr,
                                                  message: Grpc_ReadStreamRequest.with { $0.len = 3 << 20 })
            try StreamSocket.sendAll(stuck.raw, frame.withStreamID(id), what: "stuck client")
        }
        // The server gives up: reading what it managed to send ends in end of file.
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        let deadline = MonotonicClock.deadline(after: .seconds(15))
        usleep(1_000_000)
        var ended = false
        while MonotonicClock.now < deadline {
            guard try StreamSocket.waitReadable(stuck.raw, deadline: deadline) else { break }
            let count = (try? StreamSocket.receive(stuck.raw, into: &buffer, what: "stuck")) ?? 0
            if count == 0 { ended = true; break }
        }
        #expect(ended, "the server did not shut the stuck connection down")
        let next = try AgentClient(connection: try StreamSocket.connectUnix(path))
        #expect(try next.check().status == .serving)
    }
}

