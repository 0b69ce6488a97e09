import Logging
import Synchronization

/// What a device logged through swift-log, kept for tests to read.
public final class LogRecord: Sendable {
    public let lines = Mutex<[(level: Logger.Level, message: String)]>([])

    public init() {}

    public var logger: Logger {
        Logger(label: "kvmrun.test") { [self] _ in RecordingLogHandler(record: self) }
    }

    public var messages: [String] { lines.withLock { $0.map(\.message) } }
}

struct RecordingLogHandler: LogHandler {
    let record: LogRecord
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata?, source: String,
             file: String, function: String, line: UInt) {
        record.lines.withLock { $0.append((level, "\(message)")) }
    }
}
