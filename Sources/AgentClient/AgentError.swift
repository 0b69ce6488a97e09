import AgentProtocol

/// A failed agent call or connection, naming the call and, where there is one, the container.
public enum AgentError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The agent answered `call` with an error status.
    case call(String, container: String?, code: StatusCode, message: String)
    /// The agent gave no answer to `call` within `after`.
    case timeout(String, container: String?, after: Duration)
    /// The connection could not carry `call`: closed, broken, or the request or its answer
    /// could not be encoded or read.
    case connection(String, container: String?, reason: String)
    /// Reaching the agent through the VMM's hybrid-vsock socket failed at `step`.
    case connect(path: String, port: UInt32, step: String, reason: String)

    public var description: String {
        func subject(_ call: String, _ container: String?) -> String {
            container.map { "agent \(call) (container \($0))" } ?? "agent \(call)"
        }
        switch self {
        case let .call(call, container, code, message):
            return "\(subject(call, container)): \(code): \(message)"
        case let .timeout(call, container, after):
            return "\(subject(call, container)): no answer within \(after)"
        case let .connection(call, container, reason):
            return "\(subject(call, container)): \(reason)"
        case let .connect(path, port, step, reason):
            return "agent connection through \(path) to vsock port \(port): \(step): \(reason)"
        }
    }

    /// The gRPC code the agent answered with (nil for errors of the host side).
    public var code: StatusCode? {
        if case let .call(_, _, code, _) = self { return code }
        return nil
    }

    init(_ failure: TTRPCClient.Failure, call: String, container: String?) {
        switch failure {
        case let .status(error): self = .call(call, container: container, code: error.code, message: error.message)
        case let .timedOut(after): self = .timeout(call, container: container, after: after)
        case .closed, .invalidRequest, .invalidResponse: self = .connection(call, container: container, reason: failure.description)
        }
    }
}
