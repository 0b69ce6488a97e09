/// What the control API can do to a VM. `Machine` implements it (APIHook.swift); unit tests use
/// a double. Every call comes from the event-loop thread and must not block.
protocol VMControl: AnyObject {
    func info() -> VMInfo
    func metrics() -> APIMetrics
    /// Asks every vCPU to leave KVM_RUN and park; `vcpusParked` turns true once they all have.
    func pause()
    /// Lets parked (or parking) vCPUs run again.
    func resume()
    var vcpusParked: Bool { get }
    var isPaused: Bool { get }
    func setHotplugTarget(bytes: UInt64) throws(VMMError)
    var hotplugStatus: HotplugStatus? { get }
    func updateDrive(id: String, path: String) throws(VMMError)
    func sendCtrlAltDel() throws(VMMError)
    /// Stops the VM as a guest poweroff would (exit status 0).
    func shutdown()
}

/// The resources of the API and the methods each takes.
enum APIRoute: Equatable {
    case root, vm, metrics, hotplugMemory, drive(id: String), actions

    var methods: [String] {
        switch self {
        case .root, .metrics: return ["GET"]
        case .vm, .hotplugMemory: return ["GET", "PATCH"]
        case .drive: return ["PATCH"]
        case .actions: return ["PUT"]
        }
    }

    /// The resource at `path`, or 404.
    static func match(_ path: String) throws(HTTPError) -> APIRoute {
        switch path {
        case "/": return .root
        case "/vm": return .vm
        case "/metrics": return .metrics
        case "/hotplug/memory": return .hotplugMemory
        case "/actions": return .actions
        default:
            let parts = path.split(separator: "/", omittingEmptySubsequences: false)
            if parts.count == 3, parts[1] == "drives", !parts[2].isEmpty {
                return .drive(id: String(parts[2]))
            }
            throw HTTPError(404, "no resource at \(path.prefix(100)) (see docs/api.yaml)")
        }
    }
}

/// What to send back: a reply now, or 204 once every vCPU has parked (a pause).
enum APIOutcome: Equatable {
    case reply(HTTPResponse)
    case replyWhenParked
}

/// Routes a parsed request to the VM and builds the reply. Pure apart from the calls on `control`.
struct APIHandler {
    let control: any VMControl

    func handle(_ request: HTTPRequest) -> APIOutcome {
        do throws(HTTPError) {
            let route = try APIRoute.match(request.path)
            guard route.methods.contains(request.method) else {
                throw HTTPError(405, "\(request.path) takes \(route.methods.joined(separator: ", ")), not \(request.method.prefix(20))",
                                allowed: route.methods)
            }
            return try dispatch(route, request)
        } catch {
            return .reply(APIHandler.fault(error))
        }
    }

    private func dispatch(_ route: APIRoute, _ request: HTTPRequest) throws(HTTPError) -> APIOutcome {
        switch (route, request.method) {
        case (.root, _), (.vm, "GET"):
            return .reply(APIHandler.json(200, control.info()))
        case (.metrics, _):
            return .reply(APIHandler.json(200, control.metrics()))
        case (.vm, _):
            let patch = try APIJSON.decodeBody(VMStatePatch.self, from: request.body, example: #"{"state": "Paused"}"#)
            switch patch.state {
            case "Paused":
                control.pause()
                return control.vcpusParked ? .reply(HTTPResponse(status: 204)) : .replyWhenParked
            case "Resumed":
                control.resume()
                return .reply(HTTPResponse(status: 204))
            default:
                throw HTTPError(400, "state must be \"Paused\" or \"Resumed\" (got \"\(patch.state.prefix(40))\")")
            }
        case (.hotplugMemory, "GET"):
            guard let status = control.hotplugStatus else {
                throw HTTPError(400, "this VM has no hotplug memory (start it with --memory SIZE,hotplug=SIZE)")
            }
            return .reply(APIHandler.json(200, HotplugInfo(status)))
        case (.hotplugMemory, _):
            let patch = try APIJSON.decodeBody(MemoryPatch.self, from: request.body, example: #"{"requested_size_mib": 512}"#)
            let (bytes, overflow) = patch.requested_size_mib.multipliedReportingOverflow(by: 1 << 20)
            guard !overflow else { throw HTTPError(400, "requested_size_mib \(patch.requested_size_mib) is too large") }
            try APIHandler.mapVMMError { () throws(VMMError) in try control.setHotplugTarget(bytes: bytes) }
            return .reply(HTTPResponse(status: 204))
        case let (.drive(id), _):
            let patch = try APIJSON.decodeBody(DrivePatch.self, from: request.body, example: #"{"path_on_host": "/path/disk.img"}"#)
            if let bodyID = patch.drive_id, bodyID != id {
                throw HTTPError(400, "drive_id \"\(bodyID.prefix(40))\" in the body does not match \"\(id.prefix(40))\" in the path")
            }
            guard !patch.path_on_host.isEmpty else { throw HTTPError(400, "path_on_host is empty") }
            try APIHandler.mapVMMError { () throws(VMMError) in try control.updateDrive(id: id, path: patch.path_on_host) }
            return .reply(HTTPResponse(status: 204))
        case (.actions, _):
            let action = try APIJSON.decodeBody(ActionRequest.self, from: request.body, example: #"{"action_type": "Shutdown"}"#)
            switch action.action_type {
            case "Shutdown":
                control.shutdown()
            case "SendCtrlAltDel":
                try APIHandler.mapVMMError { () throws(VMMError) in try control.sendCtrlAltDel() }
            default:
                throw HTTPError(400, "action_type must be \"SendCtrlAltDel\" or \"Shutdown\" (got \"\(action.action_type.prefix(40))\")")
            }
            return .reply(HTTPResponse(status: 204))
        }
    }

    /// A VMM refusal (bad size, unknown drive, no hotplug region) is the client's 400.
    private static func mapVMMError(_ body: () throws(VMMError) -> Void) throws(HTTPError) {
        do {
            try body()
        } catch {
            throw HTTPError(400, error.description)
        }
    }

    static func json<T: Encodable>(_ status: Int, _ value: T) -> HTTPResponse {
        HTTPResponse(status: status, body: APIJSON.encode(value))
    }

    /// `{"fault_message": …}` with the error's status (and Allow for a 405).
    static func fault(_ error: HTTPError) -> HTTPResponse {
        var response = json(error.status, APIFault(faultMessage: error.message))
        if !error.allowed.isEmpty { response.headers.append(("Allow", error.allowed.joined(separator: ", "))) }
        return response
    }
}
