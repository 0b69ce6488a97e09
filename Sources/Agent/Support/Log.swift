// The agent logs to its stderr: the guest console when it is PID 1. One line per event,
// prefixed "kvmrun-agent:", written with a single write(2) so lines never interleave.
#if canImport(Glibc)
import Glibc
#endif

public enum Log {
    nonisolated(unsafe) public static var debugEnabled = false

    public static func info(_ message: @autoclosure () -> String) { emit("", message()) }
    public static func error(_ message: @autoclosure () -> String) { emit("error: ", message()) }
    public static func debug(_ message: @autoclosure () -> String) {
        if debugEnabled { emit("debug: ", message()) }
    }

    private static func emit(_ level: String, _ message: String) {
        var line = Array("kvmrun-agent: \(level)\(message)\n".utf8)
        // SAFETY: writes the local array's bytes.
        _ = line.withUnsafeMutableBytes { write(2, $0.baseAddress, $0.count) }
    }
}
