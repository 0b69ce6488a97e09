// grpc.AgentService and grpc.Health on the ttRPC server: each call decoded by the protocol
// target, handed to the Sandbox (or the guest-wide helpers), its answer encoded back.
// Handlers run on the server's worker threads and may block (WaitProcess, ReadStdout,
// ReadStderr, GetOOMEvent), giving up when the caller's connection closes.
#if canImport(Glibc)
import Glibc
#endif
import AgentProtocol
import AgentServer
import FoundationEssentials
import OCI

extension AgentError: RPCStatusConvertible {
    public var rpcError: RPCError { RPCError(StatusCode(rawValue: code.rawValue), message) }
}

public enum AgentVersion {
    public static let agent = "0.1.0"
    /// The agent API version Kata's agent reports.
    public static let api = "0.0.1"
}

public final class AgentService: Sendable {
    public let sandbox: Sandbox
    /// Called after DestroySandbox has answered (the agent as PID 1 ends the VM).
    let onDestroy: @Sendable () -> Void

    public init(sandbox: Sandbox, onDestroy: @escaping @Sendable () -> Void = {}) {
        self.sandbox = sandbox
        self.onDestroy = onDestroy
    }

    public func register(on server: TTRPCServer) {
        registerHealth(on: server)
        registerContainers(on: server)
        registerProcesses(on: server)
        registerGuest(on: server)
        registerNetwork(on: server)
    }

    private func registerHealth(on server: TTRPCServer) {
        server.register(HealthRPC.check) { _, _ in
            var response = Grpc_HealthCheckResponse()
            response.status = .serving
            return response
        }
        server.register(HealthRPC.version) { _, _ in
            var response = Grpc_VersionCheckResponse()
            response.agentVersion = AgentVersion.agent
            response.grpcVersion = AgentVersion.api
            return response
        }
    }

    private func registerContainers(on server: TTRPCServer) {
        let sandbox = self.sandbox
        server.register(AgentRPC.createSandbox) { request, _ in
            var create = Sandbox.SandboxRequest()
            create.id = request.sandboxID
            create.hostname = request.hostname
            create.dns = request.dns
            create.storages = request.storages.map(StorageRequest.init)
            create.sharedPidNamespace = request.sandboxPidns
            create.kernelModules = request.kernelModules.map(\.name)
            try sandbox.createSandbox(create)
            return Empty()
        }
        server.register(AgentRPC.destroySandbox) { [onDestroy] _, _ in
            sandbox.destroySandbox()
            onDestroy()
            return Empty()
        }
        server.register(AgentRPC.createContainer) { request, _ in
            guard request.hasOci else { throw AgentError.invalid("CreateContainer \(request.containerID): no OCI spec") }
            guard !request.sandboxPidns else {
                throw AgentError(.unimplemented, "CreateContainer \(request.containerID): sandbox_pidns (the sandbox's shared PID namespace) is not supported")
            }
            var create = Sandbox.ContainerRequest(id: request.containerID, execID: request.execID, spec: Spec(request.oci))
            create.storages = request.storages.map(StorageRequest.init)
            create.stringUser = StringUser(request.stringUser, present: request.hasStringUser)
            try sandbox.createContainer(create)
            return Empty()
        }
        server.register(AgentRPC.startContainer) { request, _ in
            try sandbox.startContainer(request.containerID)
            return Empty()
        }
        server.register(AgentRPC.removeContainer) { request, _ in
            try sandbox.removeContainer(request.containerID, timeoutSeconds: request.timeout)
            return Empty()
        }
        server.register(AgentRPC.updateContainer) { request, _ in
            try sandbox.updateContainer(containerID: request.containerID, resources: Spec.Resources(request.resources))
            return Empty()
        }
        server.register(AgentRPC.statsContainer) { request, _ in
            Self.statsResponse(try sandbox.statsContainer(containerID: request.containerID))
        }
        server.register(AgentRPC.pauseContainer) { request, _ in
            try sandbox.pauseContainer(request.containerID)
            return Empty()
        }
        server.register(AgentRPC.resumeContainer) { request, _ in
            try sandbox.resumeContainer(request.containerID)
            return Empty()
        }
        server.register(AgentRPC.getOOMEvent) { _, context in
            var event = Grpc_OOMEvent()
            event.containerID = try sandbox.nextOOMEvent(isCancelled: { context.isCancelled })
            return event
        }
    }

    private func registerProcesses(on server: TTRPCServer) {
        let sandbox = self.sandbox
        server.register(AgentRPC.execProcess) { request, _ in
            guard request.hasProcess else { throw AgentError.invalid("ExecProcess \(request.containerID)/\(request.execID): no process") }
            try sandbox.execProcess(containerID: request.containerID, execID: request.execID, process: Spec.Process(request.process),
                                    stringUser: StringUser(request.stringUser, present: request.hasStringUser))
            return Empty()
        }
        server.register(AgentRPC.signalProcess) { request, _ in
            try sandbox.signalProcess(containerID: request.containerID, execID: request.execID, signal: Int32(clamping: request.signal))
            return Empty()
        }
        server.register(AgentRPC.waitProcess) { request, context in
            var response = Grpc_WaitProcessResponse()
            response.status = try sandbox.waitProcess(containerID: request.containerID, execID: request.execID, cancellation: context.cancellationFD)
            return response
        }
        server.register(AgentRPC.writeStdin) { request, _ in
            var response = Grpc_WriteStreamResponse()
            response.len = UInt32(try sandbox.writeInput(containerID: request.containerID, execID: request.execID, data: [UInt8](request.data)))
            return response
        }
        for (method, stderr) in [(AgentRPC.readStdout, false), (AgentRPC.readStderr, true)] {
            server.register(method) { request, context in
                let count = request.len == 0 ? 64 << 10 : min(Int(request.len), maxRead)
                var response = Grpc_ReadStreamResponse()
                response.data = Data(try sandbox.readOutput(containerID: request.containerID, execID: request.execID, stderr: stderr,
                                                            count: count, cancellation: context.cancellationFD))
                return response
            }
        }
        server.register(AgentRPC.closeStdin) { request, _ in
            try sandbox.closeInput(containerID: request.containerID, execID: request.execID)
            return Empty()
        }
        server.register(AgentRPC.ttyWinResize) { request, _ in
            try sandbox.resizeTerminal(containerID: request.containerID, execID: request.execID, rows: request.row, columns: request.column)
            return Empty()
        }
    }

    private func registerGuest(on server: TTRPCServer) {
        server.register(AgentRPC.onlineCPUMem) { request, _ in
            try GuestInfo.onlineCPUsAndMemory(cpus: request.nbCpus, cpuOnly: request.cpuOnly)
            return Empty()
        }
        server.register(AgentRPC.getGuestDetails) { request, _ in
            var response = Grpc_GuestDetailsResponse()
            if request.memBlockSize { response.memBlockSizeBytes = GuestInfo.memoryBlockSize }
            if request.memHotplugProbe { response.supportMemHotplugProbe = GuestInfo.supportsHotplugProbe }
            var details = Grpc_AgentDetails()
            details.version = AgentVersion.agent
            details.initDaemon = getpid() == 1
            details.storageHandlers = Storages.handlers
            // Not in Kata's message: the agent's own figures, as "key=value" features.
            details.extraFeatures = ["vmrss_kib=\(GuestInfo.agentRSS)", "rss_anon_kib=\(GuestInfo.agentAnonymousRSS)",
                                     "guest_used_kib=\(GuestInfo.usedMemory)"]
                + GuestInfo.memoryBreakdown.map { "meminfo_\($0.key)_kib=\($0.kib)" } + ["pcp_free_kib=\(GuestInfo.perCPUFreeLists)"]
            response.agentDetails = details
            return response
        }
        server.register(AgentRPC.setGuestDateTime) { request, _ in
            try GuestInfo.setDateTime(seconds: request.sec, microseconds: request.usec)
            return Empty()
        }
        server.register(AgentRPC.copyFile) { request, _ in
            try CopyFile.copy(CopyFileRequest(path: request.path, fileSize: request.fileSize, fileMode: request.fileMode,
                                              dirMode: request.dirMode, uid: request.uid, gid: request.gid, offset: request.offset,
                                              data: [UInt8](request.data)))
            return Empty()
        }
    }

    static func statsResponse(_ stats: Sandbox.Stats) -> Grpc_StatsContainerResponse {
        var cpu = Grpc_CpuStats()
        cpu.cpuUsage.totalUsage = stats.cgroup.cpu.totalNanoseconds
        cpu.cpuUsage.usageInUsermode = stats.cgroup.cpu.userNanoseconds
        cpu.cpuUsage.usageInKernelmode = stats.cgroup.cpu.kernelNanoseconds
        cpu.throttlingData.periods = stats.cgroup.cpu.periods
        cpu.throttlingData.throttledPeriods = stats.cgroup.cpu.throttledPeriods
        cpu.throttlingData.throttledTime = stats.cgroup.cpu.throttledNanoseconds
        var memory = Grpc_MemoryStats()
        memory.cache = stats.cgroup.memory.cache
        memory.usage.usage = stats.cgroup.memory.usage
        memory.usage.maxUsage = stats.cgroup.memory.maxUsage
        memory.usage.failcnt = stats.cgroup.memory.failCount
        memory.usage.limit = stats.cgroup.memory.limit
        memory.useHierarchy = true
        memory.stats = stats.cgroup.memory.stats
        var pids = Grpc_PidsStats()
        pids.current = stats.cgroup.pidsCurrent
        pids.limit = stats.cgroup.pidsLimit
        var cgroup = Grpc_CgroupStats()
        cgroup.cpuStats = cpu
        cgroup.memoryStats = memory
        cgroup.pidsStats = pids
        var response = Grpc_StatsContainerResponse()
        response.cgroupStats = cgroup
        response.networkStats = stats.network.map { device in
            var entry = Grpc_NetworkStats()
            entry.name = device.name
            entry.rxBytes = device.receiveBytes
            entry.rxPackets = device.receivePackets
            entry.rxErrors = device.receiveErrors
            entry.rxDropped = device.receiveDropped
            entry.txBytes = device.transmitBytes
            entry.txPackets = device.transmitPackets
            entry.txErrors = device.transmitErrors
            entry.txDropped = device.transmitDropped
            return entry
        }
        return response
    }
}
