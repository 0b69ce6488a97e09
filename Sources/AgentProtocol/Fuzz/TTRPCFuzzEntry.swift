import SwiftProtobuf

/// The pure function behind the ttRPC fuzz target (and its unit tests): arbitrary bytes go
/// through everything a peer's bytes go through, minus the socket.
///
/// Input layout: byte 0 chooses the chunk size (1 + byte0 % 97) in which the rest is fed to
/// a `FrameDecoder`, so frames split at every possible place. Every frame then passes the
/// server's stream-id rule, and its payload is decoded as a `ttrpc.Request` (whose inner
/// payload is decoded as the request type of the method it names, as the server does), as a
/// `ttrpc.Response` (whose inner payload is decoded as the response type of the frame's method,
/// as the client does), and as that method's request and response types. The frame's method is
/// the method table's entry at `streamID % count` (a client knows a response's method by its
/// stream), so one input decodes a few types and the fuzzer reaches every type by the stream
/// id; decoding each frame as every type cost ~60 decodes per frame. Whatever decodes is
/// re-encoded and decoded again and must come back equal: a mismatch stops the process (that
/// is the fuzzer's oracle); anything else must only throw.
public enum TTRPCFuzzEntry {
    /// Returns how many complete frames were decoded.
    @discardableResult
    public static func consume(_ input: [UInt8]) -> Int {
        guard let first = input.first else { return 0 }
        let chunk = 1 + Int(first % 97)
        var decoder = FrameDecoder()
        var rule = StreamIDRule()
        var frames = 0
        var offset = 1
        while offset < input.count {
            let end = min(offset + chunk, input.count)
            // SAFETY: the slice's bytes, used only inside the call.
            input[offset ..< end].withUnsafeBytes { decoder.append($0) }
            offset = end
            while true {
                do {
                    guard let frame = try decoder.next() else { break }
                    frames += 1
                    examine(frame, rule: &rule)
                } catch {
                    _ = error.description
                }
            }
            precondition(decoder.bufferedBytes <= TTRPC.headerSize + decoder.maxPayload + chunk,
                         "frame decoder holds more than one frame and one chunk")
        }
        _ = try? decoder.finish()
        return frames
    }

    private static let methods: [any RPCMethodDescriptor] = AgentRPC.all + HealthRPC.all

    private static func examine(_ frame: Frame, rule: inout StreamIDRule) {
        if frame.type == .request { _ = rule.admit(frame.streamID) }
        let method = methods[Int(frame.streamID % UInt32(methods.count))]
        if let request = roundTrip(Ttrpc_Request.self, frame.payload) {
            let routed = methods.first { $0.service == request.service && $0.name == request.method }
            if let routed { _ = roundTrip(routed.requestType, Array(request.payload)) }
        }
        if let response = roundTrip(Ttrpc_Response.self, frame.payload) {
            _ = RPCError(status: response.status).description
            _ = roundTrip(method.responseType, Array(response.payload))
        }
        _ = roundTrip(method.requestType, frame.payload)
        _ = roundTrip(method.responseType, frame.payload)
    }

    /// Decodes `bytes` as `type`; when that works, checks that encoding and decoding again
    /// gives the same message.
    private static func roundTrip<M: SwiftProtobuf.Message>(_ type: M.Type, _ bytes: [UInt8]) -> M? {
        guard let message = try? M(serializedBytes: bytes) else { return nil }
        guard let again: [UInt8] = try? message.serializedBytes(), let back = try? M(serializedBytes: again) else {
            preconditionFailure("\(M.protoMessageName) decoded but does not re-encode")
        }
        precondition(back.isEqualTo(message: message), "\(M.protoMessageName) changed across a re-encode")
        return message
    }
}
