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

    @Test("32 calls in flight at once on one connection, answered in reverse order")
    func manyInFlightOutOfOrder() throws {
        let count = 32
        let server = Self.healthServer()
        let arrived = Latch(count)
        let finished = Mutex<[Int]>([])
        // Each handler waits until all calls are in flight, then until every call with a higher
        // index has answered: the answers go out strictly in reverse order of the requests.
        server.register(AgentRPC.readStdout) { request, _ in
            let index = Int(request.len)
            arrived.countDown()
            guard arrived.wait(timeout: .seconds(20)) else { throw RPCError(.deadlineExceeded, "not all calls arrived") }
            let start = MonotonicClock.now
            while finished.withLock({ $0.count }) < count - 1 - index {
                guard MonotonicClock.now - start < 20_000_000_000 else { throw RPCError(.deadlineExceeded, "stuck") }
                usleep(200)
            }
            finished.withLock { $0.append(index) }
            var response = Grpc_ReadStreamResponse()
            response.data = Data("\(request.containerID)/\(request.execID)/\(index)".utf8)
            return response
        }
        let client = try Plumbing.connected(server)
        let answers = Mutex<[Int: String]>([:])
        try concurrently(count) { index in
            var request = Grpc_ReadStreamRequest()
            request.containerID = "c\(index)"
            request.execID = "e\(index)"
            request.len = UInt32(index)
            do {
                let data = try client.readStdout(request, timeout: .after(.seconds(25))).data
                answers.withLock { $0[index] = String(decoding: data, as: UTF8.self) }
            } catch {
                answers.withLock { $0[index] = "\(error)" }
            }
        }
        let got = answers.withLock { $0 }
        for index in 0..<count { #expect(got[index] == "c\(index)/e\(index)/\(index)") }
        #expect(finished.withLock { $0 } == Array((0..<count).reversed()))
    }

    @Test("unknown method and unknown service: UNIMPLEMENTED naming them; unregistered table methods too")
    func unimplemented() throws {
        let client = try Plumbing.connected(Self.healthServer())
        let noMethod = RPCMethod<Grpc_CheckRequest, Grpc_HealthCheckResponse>(service: ServiceName.agent, name: "NoSuchCall")
        let noService = RPCMethod<Grpc_CheckRequest, Grpc_HealthCheckResponse>(service: "grpc.Nothing", name: "Check")
        #expect(throws: TTRPCClient.Failure.status(RPCError(.unimplemented, "service \"grpc.AgentService\" is not served"))) {
            try client.rpc.call(noMethod, Grpc_CheckRequest(), timeout: .seconds(5))
        }
        #expect(throws: TTRPCClient.Failure.status(RPCError(.unimplemented, "service \"grpc.Nothing\" is not served"))) {
            try client.rpc.call(noService, Grpc_CheckRequest(), timeout: .seconds(5))
        }
        let healthMethod = RPCMethod<Grpc_CheckRequest, Grpc_HealthCheckResponse>(service: ServiceName.health, name: "Watch")
        #expect(throws: TTRPCClient.Failure.status(RPCError(.unimplemented, "method \"Watch\" of service grpc.Health is not served"))) {
            try client.rpc.call(healthMethod, Grpc_CheckRequest(), timeout: .seconds(5))
        }
        // The connection is still good.
        #expect(try client.check().status == .serving)
    }

    @Test("an agent error names the call and the container")
    func agentErrorNamesCallAndContainer() throws {
        let server = Self.healthServer()
        server.register(AgentRPC.startContainer) { request, _ in
            throw RPCError(.notFound, "no container \(request.containerID)")
        }
        server.register(AgentRPC.createContainer) { _, _ in
            throw SystemError(call: "mount /run/rootfs", errno: ENOENT)
        }
        let client = try Plumbing.connected(server)
        var start = Grpc_StartContainerRequest()
        start.containerID = "abc"
        #expect(throws: AgentError.call("StartContainer", container: "abc", code: .notFound, message: "no container abc")) {
            try client.startContainer(start)
        }
        let notFound = agentError { try client.startContainer(start) }
        #expect(notFound?.description == "agent StartContainer (container abc): NOT_FOUND: no container abc")
        #expect(notFound?.code == .notFound)
        var create = Grpc_CreateContainerRequest()
        create.containerID = "xyz"
        let mount = agentError { try client.createContainer(create) }
        #expect(mount?.code == .notFound)
        #expect(mount?.description.hasPrefix("agent CreateContainer (container xyz): NOT_FOUND: mount /run/rootfs: ENOENT") == true)
        // Calls without a container say so by leaving it out.
        #expect(throws: AgentError.call("GetOOMEvent", container: nil, code: .unimplemented,
                                        message: "method \"GetOOMEvent\" of service grpc.AgentService is not served")) {
            try client.getOOMEvent(timeout: .after(.seconds(5)))
        }
    }

    @Test("a call times out, the handler sees its deadline, and the connection goes on")
    func callTimeout() throws {
        let server = Self.healthServer()
        let seen = Mutex<(deadline: Bool, passed: Bool)>((false, false))
        server.register(AgentRPC.waitProcess) { _, context in
            var entry = pollfd(fd: context.cancellationFD, events: Int16(POLLIN), revents: 0)
            // Blocks like a real WaitProcess: until the deadline (or the client goes away).
            _ = poll(&entry, 1, context.pollTimeout)
            seen.withLock { $0 = (context.deadline != nil, context.isDeadlinePassed) }
            // Answer well after the client's own timer: an answer that is there when the client
            // looks (even late) is taken, so answering at the deadline would race with it.
            usleep(3_000_000)
            throw RPCError(.deadlineExceeded, "gave up waiting")
        }
        let client = try Plumbing.connected(server)
        var wait = Grpc_WaitProcessRequest()
        wait.containerID = "c1"
        wait.execID = "p1"
        let started = MonotonicClock.now
        #expect(throws: AgentError.timeout("WaitProcess", container: "c1", after: .milliseconds(300))) {
            try client.waitProcess(wait, timeout: .after(.milliseconds(300)))
        }
        let waited = MonotonicClock.now - started
        #expect(waited >= 300_000_000 && waited < 5_000_000_000, "waited \(waited) ns")
        // The late answer is dropped; the next call is answered.
        #expect(try client.check().status == .serving)
        let start = MonotonicClock.now
        while !seen.withLock({ $0.passed }) && MonotonicClock.now - start < 5_000_000_000 { usleep(1000) }
        #expect(seen.withLock { $0.deadline && $0.passed })
    }

    @Test("every pool thread busy: the next request is refused RESOURCE_EXHAUSTED at once, not queued")
    func poolExhausted() throws {
        var limits = TTRPCServer.Limits()
        limits.maxInFlight = 1
        let server = Self.healthServer(limits)
        let ran = Atomic<Int>(0)
        let release = Latch(1)
        server.register(AgentRPC.pauseContainer) { _, _ in
            ran.add(1, ordering: .relaxed)
            _ = release.wait(timeout: .seconds(10))
            return Empty()
        }
        let client = try Plumbing.connected(server)
        let busy = Grpc_PauseContainerRequest.with { $0.containerID = "busy" }
        try startThread("blocking call") { _ = try? client.pauseContainer(busy) }
        while ran.load(ordering: .relaxed) == 0 { usleep(1000) }
        // The only thread is busy: the next call is refused at once, not queued.
        let pause = Grpc_PauseContainerRequest.with { $0.containerID = "second" }
        #expect(throws: AgentError.call("PauseContainer", container: "second", code: .resourceExhausted,
                                        message: "PauseContainer: 1 requests are already in flight")) {
            try client.pauseContainer(pause)
        }
        release.countDown()
        #expect(ran.load(ordering: .relaxed) == 1)
    }
}

