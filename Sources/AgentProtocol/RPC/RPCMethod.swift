import SwiftProtobuf

/// A ttRPC method with its request and response message types. Both sides use the same values
/// (`AgentRPC.createContainer`, `HealthRPC.check`, ...): the server registers a handler for one,
/// the client calls one, so the names on the wire and the message types cannot drift apart.
public struct RPCMethod<Request: SwiftProtobuf.Message, Response: SwiftProtobuf.Message>: RPCMethodDescriptor {
    public let service: String
    public let name: String

    public init(service: String, name: String) {
        self.service = service
        self.name = name
    }

    public var requestType: any SwiftProtobuf.Message.Type { Request.self }
    public var responseType: any SwiftProtobuf.Message.Type { Response.self }
}

/// A method without its types, for tables and diagnostics.
public protocol RPCMethodDescriptor: Sendable {
    /// The `service` field of the ttRPC request, e.g. "grpc.AgentService".
    var service: String { get }
    /// The `method` field, e.g. "CreateContainer".
    var name: String { get }
    var requestType: any SwiftProtobuf.Message.Type { get }
    var responseType: any SwiftProtobuf.Message.Type { get }
}

extension RPCMethodDescriptor {
    /// The gRPC-style path, "/grpc.AgentService/CreateContainer".
    public var path: String { "/\(service)/\(name)" }
}

/// Service names as they appear on the wire.
public enum ServiceName {
    public static let agent = "grpc.AgentService"
    public static let health = "grpc.Health"
}
