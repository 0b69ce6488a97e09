import ArgumentParser
import VMM

// `kvmrun vm info|pause|resume|memory|drive|metrics|shutdown|ctrl-alt-del`: clients of a running
// VM's control API (docs/api.yaml). Each prints the JSON reply, if any.

/// A client command that sends one fixed request.
protocol FixedAPIRequest: ParsableCommand {
    var socket: APISocketOption { get }
    static var method: String { get }
    static var path: String { get }
    static var body: [UInt8]? { get }
}

extension FixedAPIRequest {
    static var body: [UInt8]? { nil }
    func run() throws { try APIClient.call(socket.apiSocket, Self.method, Self.path, body: Self.body) }
}

struct VMInfoCommand: FixedAPIRequest {
    static let configuration = CommandConfiguration(commandName: "info", abstract: "Show the VM's state, vCPUs, memory, uptime and devices.")
    static let method = "GET", path = "/vm"
    @OptionGroup var socket: APISocketOption
}

struct VMPauseCommand: FixedAPIRequest {
    static let configuration = CommandConfiguration(commandName: "pause", abstract: "Stop every vCPU (returns once all have stopped).")
    static let method = "PATCH", path = "/vm"
    static let body: [UInt8]? = APIJSON.encode(VMStatePatch(state: "Paused"))
    @OptionGroup var socket: APISocketOption
}

struct VMResumeCommand: FixedAPIRequest {
    static let configuration = CommandConfiguration(commandName: "resume", abstract: "Restart the vCPUs of a paused VM.")
    static let method = "PATCH", path = "/vm"
    static let body: [UInt8]? = APIJSON.encode(VMStatePatch(state: "Resumed"))
    @OptionGroup var socket: APISocketOption
}

struct VMMemoryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "memory", abstract: "Show the hotplug memory, or set its requested size with --size.")
    @OptionGroup var socket: APISocketOption
    @Option(name: .long, help: ArgumentHelp("Requested hotplug size: 512M, 1G; a bare number is MiB.", valueName: "size"))
    var size: String?

    func validate() throws { _ = try requestedMiB() }

    func requestedMiB() throws -> UInt64? {
        guard let size else { return nil }
        let bytes: UInt64
        do { bytes = try SizeParser.parse(size) } catch { throw ValidationError("--size: \(error)") }
        guard bytes % (1 << 20) == 0 else { throw ValidationError("--size \(size) is not a whole number of MiB") }
        return bytes >> 20
    }

    func run() throws {
        if let mib = try requestedMiB() {
            try APIClient.call(socket.apiSocket, "PATCH", "/hotplug/memory", body: APIJSON.encode(MemoryPatch(requestedSizeMib: mib)))
        } else {
            try APIClient.call(socket.apiSocket, "GET", "/hotplug/memory")
        }
    }
}

struct VMDriveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "drive", abstract: "Point a drive at a new backing file while the VM runs.")
    @OptionGroup var socket: APISocketOption
    @Option(name: .long, help: ArgumentHelp("The drive's id (its --disk id=…).", valueName: "id"))
    var id: String
    @Option(name: .long, help: ArgumentHelp("The new backing file on the host.", valueName: "path"))
    var path: String

    func validate() throws {
        guard !id.isEmpty, !id.contains("/"), id.allSatisfy({ $0.isASCII && !$0.isWhitespace }) else {
            throw ValidationError("--id '\(id)' must be a non-empty drive id without '/' or spaces")
        }
        guard !path.isEmpty else { throw ValidationError("--path must not be empty") }
    }

    func run() throws {
        try APIClient.call(socket.apiSocket, "PATCH", "/drives/\(id)", body: APIJSON.encode(DrivePatch(driveID: id, pathOnHost: path)))
    }
}

struct VMMetricsCommand: FixedAPIRequest {
    static let configuration = CommandConfiguration(commandName: "metrics", abstract: "Show device counters and vCPU exit counts.")
    static let method = "GET", path = "/metrics"
    @OptionGroup var socket: APISocketOption
}

struct VMShutdownCommand: FixedAPIRequest {
    static let configuration = CommandConfiguration(commandName: "shutdown", abstract: "Stop the VM cleanly (its kvmrun exits 0).")
    static let method = "PUT", path = "/actions"
    static let body: [UInt8]? = APIJSON.encode(ActionRequest(actionType: "Shutdown"))
    @OptionGroup var socket: APISocketOption
}

struct VMCtrlAltDelCommand: FixedAPIRequest {
    static let configuration = CommandConfiguration(commandName: "ctrl-alt-del", abstract: "Send Ctrl-Alt-Del to the guest's keyboard.")
    static let method = "PUT", path = "/actions"
    static let body: [UInt8]? = APIJSON.encode(ActionRequest(actionType: "SendCtrlAltDel"))
    @OptionGroup var socket: APISocketOption
}
