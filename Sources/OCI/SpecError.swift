/// What is wrong with a spec, and where: `field` is a path into the JSON ("process.args",
/// "linux.namespaces[2].type"), `reason` says what is wrong with it.
public struct SpecError: Error, Equatable, CustomStringConvertible, Sendable {
    public let field: String
    public let reason: String

    public init(field: String, reason: String) {
        self.field = field
        self.reason = reason
    }

    public var description: String { field.isEmpty ? "OCI spec: \(reason)" : "OCI spec: \(field): \(reason)" }
}
