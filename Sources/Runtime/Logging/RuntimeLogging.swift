// The runtime's logging, through swift-log: one Logger made at start-up and handed down the
// layers. Lines go to two places:
//  - the --log file (appended), in --log-format text or json as runc writes them (LogLine.swift),
//    at info and above, debug and above with --debug, with the metadata as fields;
//  - stderr, as "kvmrun: MESSAGE" lines (the CLI's printError form) at warning and above
//    ("kvmrun: warning: MESSAGE" for warnings), so errors show there whatever --log says; with
//    --debug and no --log file, debug lines too.
// Each line is one write(2); the file is opened O_APPEND, so lines of concurrent kvmrun
// processes do not interleave.
#if canImport(Glibc)
import Glibc
#endif
import Logging
import Sys

public enum RuntimeLogging {
    private static let bootstrapped = ConditionLock<Logger?>(nil)

    /// Makes the process's logger and installs its handler as swift-log's for every `Logger`
    /// made afterwards (`LoggingSystem.bootstrap`, which may run once a process: a second call
    /// returns the first logger and ignores its arguments). Nothing else in the process may
    /// call `LoggingSystem.bootstrap`. A log file that cannot be opened is reported on stderr
    /// and logging goes on to stderr alone.
    public static func bootstrap(logPath: String?, format: LogFormat, debug: Bool) -> Logger {
        bootstrapped.withLock { current in
            if let current { return current }
            let sink = LogSink(logPath: logPath, format: format, debug: debug, stderr: STDERR_FILENO)
            LoggingSystem.bootstrap { label in RuntimeLogHandler(label: label, sink: sink) }
            let logger = Logger(label: "kvmrun")
            sink.reportOpenFailure(to: logger)
            current = logger
            return logger
        }
    }

    /// A logger with the same handler that leaves swift-log's global state alone, writing its
    /// stderr lines to `stderr` (tests; a second log destination).
    public static func makeLogger(label: String = "kvmrun", logPath: String?, format: LogFormat, debug: Bool,
                                  stderr: Int32 = STDERR_FILENO) -> Logger {
        let sink = LogSink(logPath: logPath, format: format, debug: debug, stderr: stderr)
        let logger = Logger(label: label) { label in RuntimeLogHandler(label: label, sink: sink) }
        sink.reportOpenFailure(to: logger)
        return logger
    }
}

/// The two destinations and their thresholds, shared by every handler copy.
final class LogSink: Sendable {
    let file: FileDescriptor?
    let openFailure: String?
    let format: LogFormat
    let debug: Bool
    let stderr: Int32
    let fileLevel: Logger.Level
    let stderrLevel: Logger.Level

    init(logPath: String?, format: LogFormat, debug: Bool, stderr: Int32) {
        self.format = format
        self.debug = debug
        self.stderr = stderr
        fileLevel = debug ? .debug : .info
        var file: FileDescriptor?
        var failure: String?
        if let logPath, !logPath.isEmpty {
            do {
                file = FileDescriptor(try sys("open --log \(logPath)") { open(logPath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644) })
            } catch {
                failure = "\(error); logging to stderr only"
            }
        }
        self.file = file
        openFailure = failure
        stderrLevel = debug && file == nil ? .debug : .warning
    }

    func reportOpenFailure(to logger: Logger) {
        if let openFailure { logger.warning("\(openFailure)") }
    }

    /// The lowest level either destination takes: the handler's logLevel.
    var lowestLevel: Logger.Level { file == nil ? stderrLevel : min(fileLevel, stderrLevel) }

    func write(level: Logger.Level, message: String, fields: [String: String]) {
        if let file, level >= fileLevel {
            writeLine(file.raw, LogLine.format(format, level: level, message: message, fields: fields, time: LogLine.now()))
        }
        if level >= stderrLevel {
            let tag = level >= .error ? "" : "\(LogLine.levelName(level)): "
            writeLine(stderr, "kvmrun: \(tag)\(message)\n")
        }
    }

    private func writeLine(_ fd: Int32, _ line: String) {
        var bytes = Array(line.utf8)
        // SAFETY: writes the local byte array; a failed log write has nowhere to be reported.
        _ = Glibc.write(fd, &bytes, bytes.count)
    }
}

/// swift-log's handler for the runtime: metadata of the handler, its provider, the call and its
/// error (as "error", logrus's key), merged in that order, later keys winning.
public struct RuntimeLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    public var logLevel: Logger.Level
    let label: String
    let sink: LogSink

    init(label: String, sink: LogSink) {
        self.label = label
        self.sink = sink
        logLevel = sink.lowestLevel
        metadataProvider = LoggingSystem.metadataProvider
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { $1 } }
        if let explicit = event.metadata { merged.merge(explicit) { $1 } }
        if let error = event.error { merged["error"] = .string("\(error)") }
        var fields = merged.mapValues(LogLine.flatten)
        if sink.debug {
            // runc's --debug reports the caller the same way (logrus's func and file fields).
            fields["func"] = event.function
            fields["file"] = "\(event.file.split(separator: "/").last.map(String.init) ?? event.file):\(event.line)"
        }
        sink.write(level: event.level, message: "\(event.message)", fields: fields)
    }
}
