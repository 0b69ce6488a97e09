// Drives a running agent through the real host-side client: the calls the end-to-end tests
// and `kvmrun bench agent` make, with the read-until-end-of-file and read-until-text loops
// they need. Used against the agent in a microVM (hybrid vsock) and against the agent binary
// on a Unix socket (host tests).
#if canImport(Glibc)
import Glibc
#endif
import AgentClient
import AgentProtocol
import FoundationEssentials
import Sys

public final class AgentDriver: Sendable {
    public let client: AgentClient

    public init(client: AgentClient) { self.client = client }

    /// Connects to an agent serving a Unix socket (tests on the host), retrying while it starts.
    public static func connectUnix(_ path: String, attempts: Int = 100) throws -> AgentDriver {
        var lastError: any Error = AgentDriverError("no attempt made")
        for _ in 0..<attempts {
            do {
                return AgentDriver(client: try AgentClient(connection: try StreamSocket.connectUnix(path)))
            } catch {
                lastError = error
                usleep(50_000)
            }
        }
        throw lastError
    }

    public func createContainer(_ id: String, spec: Grpc_Spec, storages: [Grpc_Storage] = []) throws {
        var request = Grpc_CreateContainerRequest()
        request.containerID = id
        request.execID = id
        request.oci = spec
        request.storages = storages
        try client.createContainer(request)
    }

    public func start(_ id: String) throws {
        var request = Grpc_StartContainerRequest()
        request.containerID = id
        try client.startContainer(request)
    }

    public func remove(_ id: String, timeout: UInt32 = 10) throws {
        var request = Grpc_RemoveContainerRequest()
        request.containerID = id
        request.timeout = timeout
        try client.removeContainer(request)
    }

    public func exec(_ id: String, _ execID: String, _ process: Grpc_Process) throws {
        var request = Grpc_ExecProcessRequest()
        request.containerID = id
        request.execID = execID
        request.process = process
        try client.execProcess(request)
    }

    public func wait(_ id: String, _ execID: String? = nil) throws -> Int32 {
        var request = Grpc_WaitProcessRequest()
        request.containerID = id
        request.execID = execID ?? id
        return try client.waitProcess(request).status
    }

    public func signal(_ id: String, _ execID: String? = nil, _ signal: Int32) throws {
        var request = Grpc_SignalProcessRequest()
        request.containerID = id
        request.execID = execID ?? id
        request.signal = UInt32(signal)
        try client.signalProcess(request)
    }

    public func read(_ id: String, _ execID: String? = nil, stderr: Bool = false, length: UInt32 = 65536) throws -> [UInt8] {
        var request = Grpc_ReadStreamRequest()
        request.containerID = id
        request.execID = execID ?? id
        request.len = length
        return [UInt8](stderr ? try client.readStderr(request).data : try client.readStdout(request).data)
    }

    /// Output until end-of-file (an empty read).
    public func readAll(_ id: String, _ execID: String? = nil, stderr: Bool = false) throws -> String {
        var bytes: [UInt8] = []
        while true {
            let chunk = try read(id, execID, stderr: stderr)
            if chunk.isEmpty { return String(decoding: bytes, as: UTF8.self) }
            bytes += chunk
        }
    }

    /// Output until `text` has appeared (or end-of-file).
    public func readUntil(_ id: String, _ text: String, execID: String? = nil) throws -> String {
        var output = ""
        while !output.contains(text) {
            let chunk = try read(id, execID)
            if chunk.isEmpty { break }
            output += String(decoding: chunk, as: UTF8.self)
        }
        return output
    }

    public func write(_ id: String, _ text: String, execID: String? = nil) throws -> UInt32 {
        var request = Grpc_WriteStreamRequest()
        request.containerID = id
        request.execID = execID ?? id
        request.data = Data(text.utf8)
        return try client.writeStdin(request).len
    }

    public func closeStdin(_ id: String, _ execID: String? = nil) throws {
        var request = Grpc_CloseStdinRequest()
        request.containerID = id
        request.execID = execID ?? id
        try client.closeStdin(request)
    }

    public func resize(_ id: String, _ execID: String? = nil, rows: UInt32, columns: UInt32) throws {
        var request = Grpc_TtyWinResizeRequest()
        request.containerID = id
        request.execID = execID ?? id
        request.row = rows
        request.column = columns
        try client.ttyWinResize(request)
    }

    public func stats(_ id: String) throws -> Grpc_StatsContainerResponse {
        var request = Grpc_StatsContainerRequest()
        request.containerID = id
        return try client.statsContainer(request)
    }

    /// The agent's extra "key=value" details (vmrss_kib, guest_used_kib).
    public func agentFigures() throws -> [String: UInt64] {
        var request = Grpc_GuestDetailsRequest()
        request.memBlockSize = true
        var figures: [String: UInt64] = [:]
        for feature in try client.getGuestDetails(request).agentDetails.extraFeatures {
            let parts = feature.split(separator: "=")
            if parts.count == 2, let value = UInt64(parts[1]) { figures[String(parts[0])] = value }
        }
        return figures
    }
}

public struct AgentDriverError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
