// The `state` of the OCI runtime spec (runtime.md, "State"): what `kvmrun state ID` prints and
// what every hook reads on its stdin.
import FoundationEssentials

public struct OCIState: Codable, Equatable, Sendable {
    /// The runtime spec version kvmrun's state and hooks follow (1.3.0: a failing poststart
    /// hook fails `start`, see HookRunner).
    public static let specVersion = "1.3.0"

    public var ociVersion: String
    public var id: String
    /// "creating", "created", "running", "stopped" (and runc's "paused").
    public var status: String
    /// The container's host-side process; 0 when there is none, and then left out of the JSON
    /// (the spec requires it only while created or running).
    public var pid: Int32
    /// Absolute path of the bundle directory.
    public var bundle: String
    public var annotations: [String: String]?

    public init(ociVersion: String = OCIState.specVersion, id: String, status: String, pid: Int32 = 0,
                bundle: String, annotations: [String: String]? = nil) {
        self.ociVersion = ociVersion
        self.id = id
        self.status = status
        self.pid = pid
        self.bundle = bundle
        self.annotations = annotations
    }

    /// The state of a container in `state` (its OCI status name).
    public init(id: String, state: ContainerState, pid: Int32 = 0, bundle: String, annotations: [String: String]? = nil) {
        self.init(id: id, status: state.ociStatus, pid: pid, bundle: bundle, annotations: annotations)
    }

    enum CodingKeys: String, CodingKey { case ociVersion, id, status, pid, bundle, annotations }

    public init(from decoder: any Decoder) throws {
        let keys = try decoder.container(keyedBy: CodingKeys.self)
        ociVersion = try keys.decode(String.self, forKey: .ociVersion)
        id = try keys.decode(String.self, forKey: .id)
        status = try keys.decode(String.self, forKey: .status)
        pid = try keys.decodeIfPresent(Int32.self, forKey: .pid) ?? 0
        bundle = try keys.decode(String.self, forKey: .bundle)
        annotations = try keys.decodeIfPresent([String: String].self, forKey: .annotations)
    }

    public func encode(to encoder: any Encoder) throws {
        var keys = encoder.container(keyedBy: CodingKeys.self)
        try keys.encode(ociVersion, forKey: .ociVersion)
        try keys.encode(id, forKey: .id)
        try keys.encode(status, forKey: .status)
        if pid != 0 { try keys.encode(pid, forKey: .pid) }
        try keys.encode(bundle, forKey: .bundle)
        try keys.encodeIfPresent(annotations, forKey: .annotations)
    }

    /// The state as one line of JSON (sorted keys, no trailing newline), as hooks and `state` get it.
    public func json() -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Strings and integers only: encoding cannot fail.
        return Array((try? encoder.encode(self)) ?? Data())
    }

    /// Parses a state (a `state` output, a hook's stdin).
    public static func parse(json bytes: [UInt8]) throws(RuntimeError) -> OCIState {
        do {
            return try JSONDecoder().decode(OCIState.self, from: Data(bytes))
        } catch {
            throw .invalidInput("OCI state JSON: \(error)")
        }
    }
}
