// The agent's one error family: a gRPC status code (what Kata's agent answers with, and what
// the ttRPC response carries) and a message naming what failed and where.
import Sys

public struct AgentError: Error, CustomStringConvertible, Equatable, Sendable {
    /// gRPC status codes (google.rpc.Code).
    public enum Code: Int32, Sendable {
        case cancelled = 1, unknown = 2, invalidArgument = 3, deadlineExceeded = 4, notFound = 5, alreadyExists = 6
        case permissionDenied = 7, resourceExhausted = 8, failedPrecondition = 9, aborted = 10, outOfRange = 11
        case unimplemented = 12, `internal` = 13, unavailable = 14
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }

    public static func notFound(_ message: String) -> AgentError { AgentError(.notFound, message) }
    public static func invalid(_ message: String) -> AgentError { AgentError(.invalidArgument, message) }
    public static func failed(_ message: String) -> AgentError { AgentError(.internal, message) }
    public static func precondition(_ message: String) -> AgentError { AgentError(.failedPrecondition, message) }

    /// A system call failure, as an internal error with its context.
    public init(_ error: SystemError, while step: String) {
        self.init(.internal, "\(step): \(error)")
    }
}
