// A wait(2) status, and the code Kata's agent reports for it in WaitProcess: the exit code,
// or 128 + the signal that killed the process.

public struct WaitStatus: Equatable, Sendable, CustomStringConvertible {
    public let raw: Int32

    public init(raw: Int32) { self.raw = raw }
    public static func exited(_ code: Int32) -> WaitStatus { WaitStatus(raw: (code & 0xff) << 8) }
    public static func killed(_ signal: Int32) -> WaitStatus { WaitStatus(raw: signal & 0x7f) }

    /// WIFEXITED / WEXITSTATUS.
    public var exitCode: Int32? { raw & 0x7f == 0 ? (raw >> 8) & 0xff : nil }
    /// WIFSIGNALED / WTERMSIG.
    public var signal: Int32? { raw & 0x7f != 0 && raw & 0x7f != 0x7f ? raw & 0x7f : nil }

    /// What WaitProcess returns: the exit code, or 128 + signal.
    public var code: Int32 { exitCode ?? (128 + (signal ?? 0)) }

    public var description: String {
        if let exitCode { return "exit code \(exitCode)" }
        return "killed by signal \(signal ?? 0)"
    }
}
