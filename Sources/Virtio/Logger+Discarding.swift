import Logging

extension Logger {
    /// A logger that drops everything: for devices built by tests and fuzz targets, whose
    /// guests misbehave on purpose.
    public static let discarding = Logger(label: "kvmrun.discard", factory: { _ in SwiftLogNoOpLogHandler() })
}
