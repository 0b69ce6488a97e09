#if canImport(FoundationEssentials)
import FoundationEssentials
#endif

// The JSON bodies of the control API (docs/api.yaml). Replies are encoded with snake_case keys;
// request bodies spell their keys out, so error messages can name them as the client wrote them.

/// Whether the vCPUs run.
public enum VMRunState: String, Codable, Sendable {
    case running = "Running"
    case paused = "Paused"
}

/// `GET /` and `GET /vm`.
public struct VMInfo: Codable, Equatable, Sendable {
    public var appName = "kvmrun"
    public var state: VMRunState
    public var vcpus: Int
    public var memoryMib: UInt64
    public var uptimeMs: UInt64
    public var devices: [DeviceInfo]
    public var hotplugMemory: HotplugInfo?

    public init(state: VMRunState, vcpus: Int, memoryMib: UInt64, uptimeMs: UInt64,
                devices: [DeviceInfo], hotplugMemory: HotplugInfo? = nil) {
        self.state = state
        self.vcpus = vcpus
        self.memoryMib = memoryMib
        self.uptimeMs = uptimeMs
        self.devices = devices
        self.hotplugMemory = hotplugMemory
    }
}

/// One virtio-mmio device: its window, interrupt line and the driver's status bits.
public struct DeviceInfo: Codable, Equatable, Sendable {
    public var name: String
    public var type: String
    public var mmioBase: String
    public var irq: UInt32
    public var status: UInt32

    public init(name: String, type: String, mmioBase: String, irq: UInt32, status: UInt32) {
        self.name = name
        self.type = type
        self.mmioBase = mmioBase
        self.irq = irq
        self.status = status
    }
}

/// `GET /hotplug/memory`, in MiB like the request.
public struct HotplugInfo: Codable, Equatable, Sendable {
    public var totalSizeMib: UInt64
    public var blockSizeMib: UInt64
    public var requestedSizeMib: UInt64
    public var pluggedSizeMib: UInt64

    public init(_ status: HotplugStatus) {
        totalSizeMib = status.regionSize >> 20
        blockSizeMib = status.blockSize >> 20
        requestedSizeMib = status.requestedSize >> 20
        pluggedSizeMib = status.pluggedSize >> 20
    }
}

/// `GET /metrics`: counters of every device that keeps them, and how often each vCPU left KVM_RUN.
public struct APIMetrics: Codable, Equatable, Sendable {
    public var devices: [String: [String: UInt64]]
    public var vcpus: [VcpuMetrics]

    public init(devices: [String: [String: UInt64]], vcpus: [VcpuMetrics]) {
        self.devices = devices
        self.vcpus = vcpus
    }
}

public struct VcpuMetrics: Codable, Equatable, Sendable {
    public var id: UInt32
    public var exits: UInt64

    public init(id: UInt32, exits: UInt64) {
        self.id = id
        self.exits = exits
    }
}

/// The body of every 4xx/5xx reply, as in Firecracker.
public struct APIFault: Codable, Equatable, Sendable {
    public var faultMessage: String
    public init(faultMessage: String) { self.faultMessage = faultMessage }
}

/// `PATCH /vm`.
public struct VMStatePatch: Codable, Sendable {
    public var state: String
    public init(state: String) { self.state = state }
}

/// `PATCH /hotplug/memory`.
public struct MemoryPatch: Codable, Sendable {
    public var requested_size_mib: UInt64
    public init(requestedSizeMib: UInt64) { requested_size_mib = requestedSizeMib }
}

/// `PATCH /drives/{id}`; `drive_id`, when given, must match the path.
public struct DrivePatch: Codable, Sendable {
    public var drive_id: String?
    public var path_on_host: String
    public init(driveID: String? = nil, pathOnHost: String) {
        drive_id = driveID
        path_on_host = pathOnHost
    }
}

/// `PUT /actions`.
public struct ActionRequest: Codable, Sendable {
    public var action_type: String
    public init(actionType: String) { action_type = actionType }
}

/// The one JSON encoder/decoder set-up of the API (server and client).
public enum APIJSON {
    public static func encode<T: Encodable>(_ value: T) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys]
        // Encoding these plain structs cannot fail; an empty object is a safe fallback.
        return (try? Array(encoder.encode(value))) ?? Array("{}".utf8)
    }

    public static func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8]) throws -> T {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try decoder.decode(type, from: Data(bytes))
    }

    /// Decodes a request body without a key strategy (request structs spell their keys out),
    /// turning decoder errors into a 400 that names the field.
    static func decodeBody<T: Decodable>(_ type: T.Type, from body: [UInt8], example: String) throws(HTTPError) -> T {
        guard !body.isEmpty else { throw HTTPError(400, "empty body; expected a JSON object like \(example)") }
        do {
            return try JSONDecoder().decode(type, from: Data(body))
        } catch let error as DecodingError {
            throw HTTPError(400, describe(error) + "; expected a JSON object like \(example)")
        } catch {
            throw HTTPError(400, "bad body: \(error)")
        }
    }

    static func describe(_ error: DecodingError) -> String {
        func field(_ path: [any CodingKey]) -> String {
            path.map(\.stringValue).joined(separator: ".")
        }
        switch error {
        case let .keyNotFound(key, _):
            return "missing field '\(key.stringValue)'"
        case let .typeMismatch(type, context):
            let name = field(context.codingPath)
            return name.isEmpty ? "body is not a JSON object" : "field '\(name)' is not a valid \(type)"
        case let .valueNotFound(_, context):
            return "field '\(field(context.codingPath))' is null"
        case let .dataCorrupted(context):
            let name = field(context.codingPath)
            return name.isEmpty ? "body is not valid JSON" : "field '\(name)' has a value out of range"
        @unknown default:
            return "body does not decode"
        }
    }
}
