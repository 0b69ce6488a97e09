#if canImport(FoundationEssentials)
import FoundationEssentials
#endif
import SwiftProtobuf

/// Building and reading the ttRPC envelope (`ttrpc.Request`, `ttrpc.Response`) of a frame.
/// Decoding failures are `RPCError`s with the code a ttRPC server answers them with.
public enum Envelope {
    /// The request frame for `message` on `streamID`. `timeoutNanos` 0 means no deadline.
    /// Throws INVALID_ARGUMENT when the message does not encode and RESOURCE_EXHAUSTED when
    /// the frame would exceed ttRPC's 4 MiB.
    public static func requestFrame(
        streamID: UInt32, method: some RPCMethodDescriptor, message: some SwiftProtobuf.Message,
        timeoutNanos: Int64 = 0, metadata: [Ttrpc_KeyValue] = []
    ) throws(RPCError) -> [UInt8] {
        var request = Ttrpc_Request()
        request.service = method.service
        request.method = method.name
        request.payload = Data(try encode(message, what: "\(method.name) request"))
        request.timeoutNano = timeoutNanos
        request.metadata = metadata
        return try frame(streamID: streamID, type: .request, request, what: "\(method.name) request")
    }

    /// The response frame for a result: the encoded response message, or an error status.
    /// A response too large for a frame becomes a RESOURCE_EXHAUSTED status instead.
    public static func responseFrame(streamID: UInt32, result: Result<[UInt8], RPCError>) -> [UInt8] {
        var response = Ttrpc_Response()
        switch result {
        case let .success(payload): response.payload = Data(payload)
        case let .failure(error): response.status = error.status
        }
        do {
            return try frame(streamID: streamID, type: .response, response, what: "response")
        } catch {
            var refused = Ttrpc_Response()
            refused.status = error.status
            // An error status with a short message always fits in a frame.
            return (try? frame(streamID: streamID, type: .response, refused, what: "response")) ?? []
        }
    }

    /// The `ttrpc.Request` in a request frame's payload.
    public static func decodeRequest(_ payload: [UInt8]) throws(RPCError) -> Ttrpc_Request {
        do {
            return try Ttrpc_Request(serializedBytes: payload)
        } catch {
            throw RPCError(.invalidArgument, "ttRPC request envelope does not decode: \(error)")
        }
    }

    /// The `ttrpc.Response` in a response frame's payload.
    public static func decodeResponse(_ payload: [UInt8]) throws(RPCError) -> Ttrpc_Response {
        do {
            return try Ttrpc_Response(serializedBytes: payload)
        } catch {
            throw RPCError(.internal, "ttRPC response envelope does not decode: \(error)")
        }
    }

    /// Decodes a method's message (request on the server, response on the client).
    public static func decode<M: SwiftProtobuf.Message>(_ type: M.Type, from payload: Data, what: String) throws(RPCError) -> M {
        do {
            return try M(serializedBytes: payload)
        } catch {
            throw RPCError(.invalidArgument, "\(what) (\(M.protoMessageName)) does not decode: \(error)")
        }
    }

    public static func encode(_ message: some SwiftProtobuf.Message, what: String) throws(RPCError) -> [UInt8] {
        do {
            return try message.serializedBytes()
        } catch {
            throw RPCError(.invalidArgument, "\(what) does not encode: \(error)")
        }
    }

    private static func frame(streamID: UInt32, type: FrameType, _ envelope: some SwiftProtobuf.Message, what: String) throws(RPCError) -> [UInt8] {
        let payload = try encode(envelope, what: what)
        do {
            return try Frame(streamID: streamID, type: type, payload: payload).encoded()
        } catch {
            throw RPCError(.resourceExhausted, "\(what): \(error)")
        }
    }
}
