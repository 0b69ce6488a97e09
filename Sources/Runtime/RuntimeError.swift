/// Every failure of the runtime, each naming what failed and where.
public enum RuntimeError: Error, CustomStringConvertible, Equatable, Sendable {
    /// A state change the state machine refuses.
    case invalidTransition(what: String, from: String, to: String)
    /// No sandbox or container of that id under the root.
    case notFound(String)
    /// An id already in use.
    case exists(String)
    /// Bad input: a bundle, a spec, an option (names the input and the problem).
    case invalidInput(String)
    /// A step that failed: the step ("boot the sandbox VM", "hot-add 256 MiB") and why.
    case failed(step: String, reason: String)
    /// A container or exec'd process whose executable could not be started in the guest:
    /// `missing` when it does not exist (a shell's 127), else not executable (126). The text
    /// has runc's words, which engines match ("no such file or directory").
    case cannotExecute(path: String, missing: Bool, detail: String)

    public var description: String {
        switch self {
        case let .invalidTransition(what, from, to): "\(what): cannot go from \(from) to \(to)"
        case let .notFound(what): "\(what) does not exist"
        case let .exists(what): "\(what) already exists"
        case let .invalidInput(reason): reason
        case let .failed(step, reason): "\(step): \(reason)"
        case let .cannotExecute(path, missing, detail):
            "exec failed: unable to start container process: exec: \"\(path)\": \(missing ? "no such file or directory" : "permission denied") (\(detail))"
        }
    }

    /// The exit status a command ends with for this error: 127/126 for an executable that could
    /// not be started (as a shell, and as podman reports it), else 1 (as runc).
    public var exitStatus: Int32 {
        if case let .cannotExecute(_, missing, _) = self { return missing ? 127 : 126 }
        return 1
    }

    /// Wraps any error as a failed step (an existing RuntimeError keeps its own words).
    public static func step(_ step: String, _ error: any Error) -> RuntimeError {
        if let error = error as? RuntimeError { return error }
        return .failed(step: step, reason: "\(error)")
    }
}
