import SwiftProtobuf

public typealias Empty = SwiftProtobuf.Google_Protobuf_Empty

/// Every call of `grpc.AgentService` kvmrun implements, typed (agent.proto).
public enum AgentRPC {
    private static func method<Request, Response>(_ name: String) -> RPCMethod<Request, Response> {
        RPCMethod(service: ServiceName.agent, name: name)
    }

    // Sandbox.
    public static let createSandbox: RPCMethod<Grpc_CreateSandboxRequest, Empty> = method("CreateSandbox")
    public static let destroySandbox: RPCMethod<Grpc_DestroySandboxRequest, Empty> = method("DestroySandbox")
    // Containers.
    public static let createContainer: RPCMethod<Grpc_CreateContainerRequest, Empty> = method("CreateContainer")
    public static let startContainer: RPCMethod<Grpc_StartContainerRequest, Empty> = method("StartContainer")
    public static let removeContainer: RPCMethod<Grpc_RemoveContainerRequest, Empty> = method("RemoveContainer")
    public static let updateContainer: RPCMethod<Grpc_UpdateContainerRequest, Empty> = method("UpdateContainer")
    public static let statsContainer: RPCMethod<Grpc_StatsContainerRequest, Grpc_StatsContainerResponse> = method("StatsContainer")
    public static let pauseContainer: RPCMethod<Grpc_PauseContainerRequest, Empty> = method("PauseContainer")
    public static let resumeContainer: RPCMethod<Grpc_ResumeContainerRequest, Empty> = method("ResumeContainer")
    // Processes.
    public static let execProcess: RPCMethod<Grpc_ExecProcessRequest, Empty> = method("ExecProcess")
    public static let signalProcess: RPCMethod<Grpc_SignalProcessRequest, Empty> = method("SignalProcess")
    public static let waitProcess: RPCMethod<Grpc_WaitProcessRequest, Grpc_WaitProcessResponse> = method("WaitProcess")
    // Standard streams.
    public static let writeStdin: RPCMethod<Grpc_WriteStreamRequest, Grpc_WriteStreamResponse> = method("WriteStdin")
    public static let readStdout: RPCMethod<Grpc_ReadStreamRequest, Grpc_ReadStreamResponse> = method("ReadStdout")
    public static let readStderr: RPCMethod<Grpc_ReadStreamRequest, Grpc_ReadStreamResponse> = method("ReadStderr")
    public static let closeStdin: RPCMethod<Grpc_CloseStdinRequest, Empty> = method("CloseStdin")
    public static let ttyWinResize: RPCMethod<Grpc_TtyWinResizeRequest, Empty> = method("TtyWinResize")
    // Networking.
    public static let updateInterface: RPCMethod<Grpc_UpdateInterfaceRequest, Types_Interface> = method("UpdateInterface")
    public static let updateRoutes: RPCMethod<Grpc_UpdateRoutesRequest, Grpc_Routes> = method("UpdateRoutes")
    public static let listInterfaces: RPCMethod<Grpc_ListInterfacesRequest, Grpc_Interfaces> = method("ListInterfaces")
    public static let listRoutes: RPCMethod<Grpc_ListRoutesRequest, Grpc_Routes> = method("ListRoutes")
    // The guest as a machine.
    public static let onlineCPUMem: RPCMethod<Grpc_OnlineCPUMemRequest, Empty> = method("OnlineCPUMem")
    public static let getGuestDetails: RPCMethod<Grpc_GuestDetailsRequest, Grpc_GuestDetailsResponse> = method("GetGuestDetails")
    public static let setGuestDateTime: RPCMethod<Grpc_SetGuestDateTimeRequest, Empty> = method("SetGuestDateTime")
    public static let copyFile: RPCMethod<Grpc_CopyFileRequest, Empty> = method("CopyFile")
    public static let getOOMEvent: RPCMethod<Grpc_GetOOMEventRequest, Grpc_OOMEvent> = method("GetOOMEvent")

    /// All of the above, in agent.proto's order.
    public static let all: [any RPCMethodDescriptor] = [
        createSandbox, destroySandbox,
        createContainer, startContainer, removeContainer, updateContainer, statsContainer,
        pauseContainer, resumeContainer,
        execProcess, signalProcess, waitProcess,
        writeStdin, readStdout, readStderr, closeStdin, ttyWinResize,
        updateInterface, updateRoutes, listInterfaces, listRoutes,
        onlineCPUMem, getGuestDetails, setGuestDateTime, copyFile, getOOMEvent,
    ]
}

/// `grpc.Health` (health.proto).
public enum HealthRPC {
    public static let check = RPCMethod<Grpc_CheckRequest, Grpc_HealthCheckResponse>(service: ServiceName.health, name: "Check")
    public static let version = RPCMethod<Grpc_CheckRequest, Grpc_VersionCheckResponse>(service: ServiceName.health, name: "Version")

    public static let all: [any RPCMethodDescriptor] = [check, version]
}
