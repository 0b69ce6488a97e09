import AgentProtocol
import Sys

/// How long a call may wait for its answer.
public enum CallTimeout: Sendable, Equatable {
    /// The client's `defaultTimeout`.
    case standard
    case after(Duration)
    /// No limit: for calls whose point is to wait (WaitProcess, ReadStdout, ReadStderr,
    /// GetOOMEvent). They still fail at once when the connection closes.
    case unlimited
}

/// The host's client of the guest agent: one typed method per call of `grpc.AgentService` and
/// `grpc.Health`, all multiplexed on one connection. Every call has a timeout (`defaultTimeout`
/// unless the call says otherwise; the calls that wait for the guest have none by default) and
/// every failure is an `AgentError` naming the call and its container.
public final class AgentClient: Sendable {
    public static let standardTimeout: Duration = .seconds(30)

    public let rpc: TTRPCClient
    public let defaultTimeout: Duration

    /// Serves an already connected stream to the agent (owned from here on).
    public init(connection: FileDescriptor, defaultTimeout: Duration = AgentClient.standardTimeout) throws(AgentError) {
        do {
            rpc = try TTRPCClient(connection: connection)
        } catch {
            throw .connection("connect", container: nil, reason: "\(error)")
        }
        self.defaultTimeout = defaultTimeout
    }

    /// Connects to the agent's vsock port through the VMM's hybrid-vsock socket at `path`.
    public static func connect(
        hybridVsock path: String, port: UInt32 = HybridVsock.agentPort,
        connectTimeout: Duration = .seconds(5), defaultTimeout: Duration = AgentClient.standardTimeout
    ) throws(AgentError) -> AgentClient {
        let fd = try HybridVsock.connect(path: path, port: port, timeout: connectTimeout)
        return try AgentClient(connection: fd, defaultTimeout: defaultTimeout)
    }

    /// Any method of the table; the typed methods below all come here.
    public func call<Request, Response>(
        _ method: RPCMethod<Request, Response>, _ request: Request, container: String?, timeout: CallTimeout
    ) throws(AgentError) -> Response {
        let limit: Duration? = switch timeout {
        case .standard: defaultTimeout
        case let .after(duration): duration
        case .unlimited: nil
        }
        do {
            return try rpc.call(method, request, timeout: limit)
        } catch {
            throw AgentError(error, call: method.name, container: container.flatMap { $0.isEmpty ? nil : $0 })
        }
    }

    public func close() { rpc.close() }
}

// The typed calls, in agent.proto's order. Each passes the request's container id (if it has
// one) for the error message.
extension AgentClient {
    public func createSandbox(_ request: Grpc_CreateSandboxRequest, timeout: CallTimeout = .standard) throws(AgentError) {
        _ = try call(AgentRPC.createSandbox, request, container: nil, timeout: timeout)
    }

    public func destroySandbox(_ request: Grpc_DestroySandboxRequest = .init(), timeout: CallTimeout = .standard) throws(AgentError) {
        _ = try call(AgentRPC.destroySandbox, request, container: nil, timeout: timeout)
    }

    public func createContainer(_ request: Grpc_CreateContainerRequest, timeout: CallTimeout = .standard) throws(AgentError) {
        _ = try call(AgentRPC.createContainer, request, container: request.containerID, timeout: timeout)
    }

    public func startContainer(_ request: Grpc_StartContainerRequest, timeout: CallTimeout = .standard) throws(AgentError) {
        _ = try call(AgentRPC.startContainer, request, container: request.containerID, timeout: timeout)
    }

    public func removeContainer(_ request: Grpc_RemoveContainerRequest, timeout: CallTimeout = .standard) throws(AgentError) {
        _ = try call(AgentRPC.removeContainer, request, container: request.containerID, timeout: timeout)
    }

    public func updateContainer(_ request: Grpc_UpdateContainerRequest, timeout: CallTimeout = .standard) throws(AgentError) {
        _ = try call(AgentRPC.updateContainer, request, container: request.containerID, timeout: timeout)
    }

    public func statsContainer(_ request: Grpc_StatsContainerRequest, timeout: CallTimeout = .standard) throws(AgentError) -> Grpc_StatsContainerResponse {
        try call(AgentRPC.statsContainer, request, container: request.containerID, timeout: timeout)
    }

    public func pauseContainer(_ request: Grpc_PauseContainerRequest, timeout: CallTimeout = .standard) throws(AgentError) {
        _ = try call(AgentRPC.pauseContainer, request, container: request.containerID, timeout: timeout)
    }

    public func resumeContainer(_ request: Grpc_ResumeContainerRequest, timeout: CallTimeout = .standard) throws(AgentError) {
        _ = try call(AgentRPC.resumeContainer, request, container: request.containerID, timeout: timeout)
    }

    public func execProcess(_ request: Grpc_ExecProcessRequest, timeout: CallTimeout = .standard) throws(AgentError) {
        _ = try call(AgentRPC.execProcess, request, container: request.containerID, timeout: timeout)
    }

    public func signalProcess(_ request: Grpc_SignalProcessRequest, timeout: CallTimeout = .standard) throws(AgentError) {
        _ = try call(AgentRPC.signalProcess, request, container: request.containerID, timeout: timeout)
    }

    /// Waits for the process to exit (no time limit unless given).
    public func waitProcess(_ request: Grpc_WaitProcessRequest, timeout: CallTimeout = .unlimited) throws(AgentError) -> Grpc_WaitProcessResponse {
        try call(AgentRPC.waitProcess, request, container: request.containerID, timeout: timeout)
    }

    public func writeStdin(_ request: Grpc_WriteStreamRequest, timeout: CallTimeout = .standard) throws(AgentError) -> Grpc_WriteStreamResponse {
        try call(AgentRPC.writeStdin, request, container: request.containerID, timeout: timeout)
    }

    /// Waits for output (no time limit unless given).
    public func readStdout(_ request: Grpc_ReadStreamRequest, timeout: CallTimeout = .unlimited) throws(AgentError) -> Grpc_ReadStreamResponse {
        try call(AgentRPC.readStdout, request, container: request.containerID, timeout: timeout)
    }

    /// Waits for output (no time limit unless given).
    public func readStderr(_ request: Grpc_ReadStreamRequest, timeout: CallTimeout = .unlimited) throws(AgentError) -> Grpc_ReadStreamResponse {
        try call(AgentRPC.readStderr, request, container: request.containerID, timeout: timeout)
    }

    public func closeStdin(_ request: Grpc_CloseStdinRequest, timeout: CallTimeout = .standard) throws(AgentError) {
        _ = try call(AgentRPC.closeStdin, request, container: request.containerID, timeout: timeout)
    }

    public func ttyWinResize(_ request: Grpc_TtyWinResizeRequest, timeout: CallTimeout = .standard) throws(AgentError) {
        _ = try call(AgentRPC.ttyWinResize, request, container: request.containerID, timeout: timeout)
    }

    public func updateInterface(_ request: Grpc_UpdateInterfaceRequest, timeout: CallTimeout = .standard) throws(AgentError) -> Types_Interface {
        try call(AgentRPC.updateInterface, request, container: nil, timeout: timeout)
    }

    public func updateRoutes(_ request: Grpc_UpdateRoutesRequest, timeout: CallTimeout = .standard) throws(AgentError) -> Grpc_Routes {
        try call(AgentRPC.updateRoutes, request, container: nil, timeout: timeout)
    }

    public func listInterfaces(_ request: Grpc_ListInterfacesRequest = .init(), timeout: CallTimeout = .standard) throws(AgentError) -> Grpc_Interfaces {
        try call(AgentRPC.listInterfaces, request, container: nil, timeout: timeout)
    }

    public func listRoutes(_ request: Grpc_ListRoutesRequest = .init(), timeout: CallTimeout = .standard) throws(AgentError) -> Grpc_Routes {
        try call(AgentRPC.listRoutes, request, container: nil, timeout: timeout)
    }

    public func onlineCPUMem(_ request: Grpc_OnlineCPUMemRequest, timeout: CallTimeout = .standard) throws(AgentError) {
        _ = try call(AgentRPC.onlineCPUMem, request, container: nil, timeout: timeout)
    }

    public func getGuestDetails(_ request: Grpc_GuestDetailsRequest = .init(), timeout: CallTimeout = .standard) throws(AgentError) -> Grpc_GuestDetailsResponse {
        try call(AgentRPC.getGuestDetails, request, container: nil, timeout: timeout)
    }

    public func setGuestDateTime(_ request: Grpc_SetGuestDateTimeRequest, timeout: CallTimeout = .standard) throws(AgentError) {
        _ = try call(AgentRPC.setGuestDateTime, request, container: nil, timeout: timeout)
    }

    public func copyFile(_ request: Grpc_CopyFileRequest, timeout: CallTimeout = .standard) throws(AgentError) {
        _ = try call(AgentRPC.copyFile, request, container: nil, timeout: timeout)
    }

    /// Waits for the next OOM kill in any container (no time limit unless given).
    public func getOOMEvent(_ request: Grpc_GetOOMEventRequest = .init(), timeout: CallTimeout = .unlimited) throws(AgentError) -> Grpc_OOMEvent {
        try call(AgentRPC.getOOMEvent, request, container: nil, timeout: timeout)
    }

    /// grpc.Health/Check: is the agent serving?
    public func check(_ request: Grpc_CheckRequest = .init(), timeout: CallTimeout = .standard) throws(AgentError) -> Grpc_HealthCheckResponse {
        try call(HealthRPC.check, request, container: nil, timeout: timeout)
    }

    /// grpc.Health/Version: the agent's protocol and build versions.
    public func version(_ request: Grpc_CheckRequest = .init(), timeout: CallTimeout = .standard) throws(AgentError) -> Grpc_VersionCheckResponse {
        try call(HealthRPC.version, request, container: nil, timeout: timeout)
    }
}
