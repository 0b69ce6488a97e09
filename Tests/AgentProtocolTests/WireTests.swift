#if canImport(Glibc)
import Glibc
#endif
import AgentProtocol
import AgentServer
import FoundationEssentials
import Synchronization
import Sys
import Testing

/// A client that writes frames by hand and reads the server's answers, to break the rules on
/// purpose.
final class RawPeer {
    let fd: FileDescriptor
    private var decoder = FrameDecoder()

    init(_ server: TTRPCServer) throws {
        let (serverEnd, clientEnd) = try Plumbing.socketPair()
        try startThread("raw peer's server") { server.serve(connection: serverEnd) }
        fd = clientEnd
    }

    func write(_ bytes: [UInt8]) throws {
        try StreamSocket.sendAll(fd.raw, bytes, what: "raw peer")
    }

    func request(_ id: UInt32, _ method: some RPCMethodDescriptor, _ message: some SwiftProtobufMessage, timeoutNanos: Int64 = 0) throws {
        try write(Envelope.requestFrame(streamID: id, method: method, message: message, timeoutNanos: timeoutNanos)
            .withStreamID(id))
    }

    /// The next response frame (within 5 s), decoded.
    func response() throws -> (streamID: UInt32, response: Ttrpc_Response) {
        let deadline = MonotonicClock.deadline(after: .seconds(5))
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            if let frame = try decoder.next() {
                #expect(frame.type == .response)
                return (frame.streamID, try Ttrpc_Response(serializedBytes: frame.payload))
            }
            guard try StreamSocket.waitReadable(fd.raw, deadline: deadline) else { throw RPCError(.deadlineExceeded, "no response in 5 s") }
            let count = try StreamSocket.receive(fd.raw, into: &buffer, what: "raw peer")
            guard count > 0 else { throw RPCError(.unavailable, "server closed the connection") }
            decoder.append(Array(buffer[0..<count]))
        }
    }

    /// The next response's stream id and status code.
    func status() throws -> (UInt32, StatusCode, String) {
        let (id, response) = try response()
        return (id, StatusCode(rawValue: response.status.code), response.status.message)
    }
}

import SwiftProtobuf
typealias SwiftProtobufMessage = SwiftProtobuf.Message

extension Array where Element == UInt8 {
    /// A request frame with its stream id rewritten.
    func withStreamID(_ id: UInt32) -> [UInt8] {
        var bytes = self
        FrameHeader.setStreamID(id, in: &bytes)
        return bytes
    }
}

@Suite("agent ttRPC: the server against a rule-breaking client")
struct WireTests {
    static let check = Grpc_CheckRequest()

    @Test("stream ids: reused, lower and even ids refused with INVALID_ARGUMENT on that id; the connection goes on")
    func streamIDs() throws {
        let peer = try RawPeer(ServerClientTests.healthServer())
        try peer.request(3, HealthRPC.check, Self.check)
        #expect(try peer.status().0 == 3)
        for id: UInt32 in [3, 1, 4] {
            try peer.request(id, HealthRPC.check, Self.check)
            let (answered, code, message) = try peer.status()
            #expect(answered == id && code == .invalidArgument, "id \(id): \(code) \(message)")
        }
        try peer.request(5, HealthRPC.check, Self.check)
        let (id, response) = try peer.response()
        #expect(id == 5 && !response.hasStatus)
        #expect(try Grpc_HealthCheckResponse(serializedBytes: response.payload).status == .serving)
    }

    @Test("oversize frame: RESOURCE_EXHAUSTED on its stream, payload skipped, next request served")
    func oversize() throws {
        let peer = try RawPeer(ServerClientTests.healthServer())
        let declared = TTRPC.maxPayload + 100
        try peer.write(FrameHeader(length: UInt32(declared), streamID: 7, type: .request).encoded)
        let (id, code, message) = try peer.status()
        #expect(id == 7 && code == .resourceExhausted && message.contains("exceeds the 4194304-byte limit"))
        // The declared payload follows and is dropped, in pieces.
        let piece = [UInt8](repeating: 0xEE, count: 1 << 20)
        var left = declared
        while left > 0 {
            let count = min(left, piece.count)
            try peer.write(Array(piece[0..<count]))
            left -= count
        }
        try peer.request(9, HealthRPC.check, Self.check)
        #expect(try peer.status().0 == 9)
    }

    @Test("garbage envelopes, data frames, response frames and streaming requests get errors, not silence")
    func badFrames() throws {
        let peer = try RawPeer(ServerClientTests.healthServer())
        try peer.write(Frame(streamID: 1, type: .request, payload: [0xFF, 0xFF, 0xFF]).encoded())
        var (id, code, _) = try peer.status()
        #expect(id == 1 && code == .invalidArgument)
        try peer.write(Frame(streamID: 3, type: .data, payload: [1]).encoded())
        (id, code, _) = try peer.status()
        #expect(id == 3 && code == .invalidArgument)
        try peer.write(Frame(streamID: 5, type: .response, payload: []).encoded())
        (id, code, _) = try peer.status()
        #expect(id == 5 && code == .invalidArgument)
        var streaming = try Envelope.requestFrame(streamID: 7, method: HealthRPC.check, message: Self.check).withStreamID(7)
        streaming[9] = FrameFlags.remoteOpen.rawValue
        try peer.write(streaming)
        (id, code, _) = try peer.status()
        #expect(id == 7 && code == .unimplemented)
        // A zero-length request is an empty envelope: no service, so UNIMPLEMENTED.
        try peer.write(Frame(streamID: 9, type: .request, payload: []).encoded())
        (id, code, _) = try peer.status()
        #expect(id == 9 && code == .unimplemented)
        try peer.request(11, HealthRPC.check, Self.check)
        #expect(try peer.status() == (11, .ok, ""))
    }

    @Test("timeout_nano: a request whose deadline has passed when a thread takes it is not run")
    func expiredDeadline() throws {
        let server = ServerClientTests.healthServer()
        let ran = Atomic<Int>(0)
        server.register(AgentRPC.resumeContainer) { _, _ in
            ran.add(1, ordering: .relaxed)
            return Empty()
        }
        let peer = try RawPeer(server)
        try peer.request(1, AgentRPC.resumeContainer, Grpc_ResumeContainerRequest(), timeoutNanos: 1)
        let (id, code, message) = try peer.status()
        #expect(id == 1 && code == .deadlineExceeded && message.contains("passed before it started"))
        try peer.request(3, AgentRPC.resumeContainer, Grpc_ResumeContainerRequest(), timeoutNanos: 10_000_000_000)
        #expect(try peer.status() == (3, .ok, ""))
        #expect(ran.load(ordering: .relaxed) == 1)
    }

    @Test("a handler's response over 4 MiB becomes RESOURCE_EXHAUSTED")
    func oversizeResponse() throws {
        let server = ServerClientTests.healthServer()
        server.register(AgentRPC.readStdout) { _, _ in
            var response = Grpc_ReadStreamResponse()
            response.data = Data(count: TTRPC.maxPayload)
            return response
        }
        let peer = try RawPeer(server)
        try peer.request(1, AgentRPC.readStdout, Grpc_ReadStreamRequest())
        let (id, code, _) = try peer.status()
        #expect(id == 1 && code == .resourceExhausted)
    }
}
