#if canImport(Glibc)
import Glibc
#endif
import AgentClient
import AgentProtocol
import AgentServer
import FoundationEssentials
import Synchronization
import Sys
import Testing

/// The ttRPC server and the agent client against each other over real sockets.
@Suite("agent ttRPC: client and server")
struct ServerClientTests {
    static func healthServer(_ limits: TTRPCServer.Limits = .init()) -> TTRPCServer {
        let server = TTRPCServer(limits: limits, log: { _ in })
        server.register(HealthRPC.check) { _, _ in
            var response = Grpc_HealthCheckResponse()
            response.status = .serving
            return response
        }
        server.register(HealthRPC.version) { _, _ in
            var response = Grpc_VersionCheckResponse()
            response.agentVersion = "test"
            response.grpcVersion = "ttrpc"
            return response
        }
        return server
    }

    @Test("Health.Check and Version round trip")
    func health() throws {
        let client = try Plumbing.connected(Self.healthServer())
        #expect(try client.check().status == .serving)
        let version = try client.version()
        #expect(version.agentVersion == "test" && version.grpcVersion == "ttrpc")
    }
}
