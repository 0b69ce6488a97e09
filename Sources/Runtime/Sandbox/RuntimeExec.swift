#if canImport(Glibc)
import Glibc
#endif
import AgentClient
import AgentProtocol
import Logging
import OCI

public struct ExecOptions: Sendable {
    public var id: String
    public var process: Spec.Process
    public var detach: Bool
    public var pidFile: String?
    public var consoleSocket: String?

    public init(id: String, process: Spec.Process, detach: Bool, pidFile: String?, consoleSocket: String?) {
        self.id = id
        self.process = process
        self.detach = detach
        self.pidFile = pidFile
        self.consoleSocket = consoleSocket
    }
}

public struct ResourceUpdate: Sendable {
    public var memoryLimit: Int64?
    public var cpuQuota: Int64?
    public var cpuPeriod: UInt64?
    public var cpuShares: UInt64?
    public var pidsLimit: Int64?

    public init(memoryLimit: Int64? = nil, cpuQuota: Int64? = nil, cpuPeriod: UInt64? = nil, cpuShares: UInt64? = nil, pidsLimit: Int64? = nil) {
        self.memoryLimit = memoryLimit
        self.cpuQuota = cpuQuota
        self.cpuPeriod = cpuPeriod
        self.cpuShares = cpuShares
        self.pidsLimit = pidsLimit
    }
}

extension Runtime {
    /// `exec`: a new process in a running container, with its own relay. Detached: returns once
    /// it runs (the relay's pid in the pid file). Attached: relays it here and returns its exit status.
    public func exec(_ options: ExecOptions) throws(RuntimeError) -> Int32 {
        let execID = "exec-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let relayPID: pid_t = try withContainer(options.id, mode: .exclusive) { sandbox, container, _ throws(RuntimeError) in
            guard container.state == .running else {
                throw RuntimeError.failed(step: "exec in container \(options.id)", reason: "it is \(container.state.rawValue), not running")
            }
            let client = try agent(sandbox)
            defer { client.close() }
            var request = Grpc_ExecProcessRequest()
            request.containerID = options.id
            request.execID = execID
            request.process = AgentSpec.process(options.process)
            let path = options.process.args?.first ?? "?"
            try agentCall("exec \(path) in container \(options.id)", sandbox: sandbox, executable: path) { () throws(AgentError) in
                try client.execProcess(request)
            }
            let exitFile = store.sandboxDirectory(sandbox.id) + "/\(execID).exit"
            let config = RelayConfig(
                agentSocket: sandbox.vsockSocket, agentSocketIsDirect: false, containerID: options.id, execID: execID,
                terminal: options.process.terminal ?? false, consoleSocket: options.consoleSocket, stdinOpen: true,
                exitFile: exitFile)
            let pid = try ProcessRelay.spawn(config, executable: executable, timeoutSeconds: 30)
            if let identity = ProcessIdentity.of(pid) {
                container.execs.removeAll { !$0.relay.isAlive }
                container.execs.append(ExecRecord(execID: execID, relay: identity, exitFile: exitFile))
                try store.save(container)
            }
            if let pidFile = options.pidFile { try AtomicFile.write(Array("\(pid)".utf8), to: pidFile, mode: 0o644) }
            return pid
        }
        guard !options.detach else { return 0 }
        var status: Int32 = 0
        while waitpid(relayPID, &status, 0) < 0 {
            guard errno == EINTR else { throw .failed(step: "wait for exec in \(options.id)", reason: errnoText()) }
        }
        if (status & 0x7f) == 0 { return (status >> 8) & 0xff }
        return 128 + (status & 0x7f)
    }

    /// `update`: new limits for the container's cgroup in the guest; a new memory limit also
    /// grows or shrinks the memory hot-added for it.
    public func update(_ id: String, _ change: ResourceUpdate) throws(RuntimeError) {
        try withContainer(id, mode: .exclusive) { sandbox, container, _ throws(RuntimeError) in
            guard container.state != .stopped else {
                throw RuntimeError.failed(step: "update container \(id)", reason: "it is stopped")
            }
            var resources = Grpc_LinuxResources()
            if let limit = change.memoryLimit {
                let wanted = MemoryHotplug.mebibytes(forLimit: limit)
                let others = sandbox.hotpluggedMiB - min(sandbox.hotpluggedMiB, container.memoryMiB)
                try MemoryHotplug.resize(VMMControl(socket: sandbox.apiSocket), to: others + wanted,
                                         step: "resize the memory of \(id) to \(wanted) MiB")
                sandbox.hotpluggedMiB = others + wanted
                container.memoryMiB = wanted
                resources.memory.limit = limit
            }
            if let pids = change.pidsLimit { resources.pids.limit = pids }
            let client = try agent(sandbox)
            defer { client.close() }
            if change.cpuQuota != nil || change.cpuPeriod != nil || change.cpuShares != nil {
                if let quota = change.cpuQuota { resources.cpu.quota = quota }
                if let period = change.cpuPeriod { resources.cpu.period = period }
                if let shares = change.cpuShares { resources.cpu.shares = shares }
                // A new quota is a new count of CPUs the container asks for (-1: no limit).
                if let quota = change.cpuQuota {
                    container.vcpus = Runtime.vcpus(quota: quota, period: change.cpuPeriod)
                    try growVcpus(of: &sandbox, container: id, wanted: container.vcpus, client: client)
                }
            }
            var request = Grpc_UpdateContainerRequest()
            request.containerID = id
            request.resources = resources
            try agentCall("update container \(id)", sandbox: sandbox) { () throws(AgentError) in try client.updateContainer(request) }
            try store.save(sandbox)
            try store.save(container)
        }
    }

    /// The container's cgroup statistics from the agent.
    public func stats(_ id: String) throws(RuntimeError) -> Grpc_StatsContainerResponse {
        try withContainer(id, mode: .shared) { sandbox, container, _ throws(RuntimeError) in
            guard container.state != .stopped else { throw RuntimeError.failed(step: "stats of \(id)", reason: "container is stopped") }
            let client = try agent(sandbox)
            defer { client.close() }
            var request = Grpc_StatsContainerRequest()
            request.containerID = id
            return try agentCall("stats of container \(id)", sandbox: sandbox) { () throws(AgentError) in try client.statsContainer(request) }
        }
    }

    /// The host processes that stand for the container's processes (its relays), for `ps`.
    public func processes(_ id: String) throws(RuntimeError) -> [Int32] {
        try withContainer(id, mode: .shared) { _, container, _ throws(RuntimeError) in
            guard container.state != .stopped else { return [] }
            return ([container.relay].compactMap { $0 } + container.execs.map(\.relay)).filter(\.isAlive).map(\.pid)
        }
    }
}
