// Processes of the sandbox's containers: exec, signals, waits, stdio, resources, stats.
#if canImport(Glibc)
import Glibc
#endif
import OCI

extension Sandbox {
    func process(_ containerID: String, _ execID: String) throws(AgentError) -> (Container, ContainerProcess) {
        let container = try container(containerID)
        guard let process = monitor.withLock({ container.process(execID) }) else {
            throw AgentError.notFound("process \(execID) not found in container \(containerID)")
        }
        return (container, process)
    }

    /// ExecProcess: a new process in a running container's namespaces and cgroup. Fails at
    /// once, naming the step, when it cannot be started ("exec \"nope\": executable file not
    /// found in $PATH").
    public func execProcess(containerID: String, execID: String, process spec: Spec.Process, stringUser: StringUser?) throws(AgentError) {
        guard Self.isValidID(execID) else { throw AgentError.invalid("exec id \"\(execID)\" must be 1-128 characters of [A-Za-z0-9_.-]") }
        do {
            try spec.validate(field: "process")
        } catch {
            throw AgentError.invalid(error.description)
        }
        let container = try container(containerID)
        let namespaces = try monitor.withLock { () throws(AgentError) -> [Int32] in
            guard container.state == .running else {
                throw AgentError.precondition("container \(containerID) is \(container.state.rawValue): exec needs a running container")
            }
            guard container.process(execID) == nil else {
                throw AgentError(.alreadyExists, "process \(execID) already exists in container \(containerID)")
            }
            return container.namespaceFDs
        }
        var request = try ContainerSetup.process(spec, stringUser: stringUser, root: "/proc/\(container.initProcess.pid)/root")
        request.joinNamespaces = namespaces
        let cgroupFD = try container.cgroup?.openDirectory() ?? -1
        defer { if cgroupFD >= 0 { close(cgroupFD) } }
        request.cgroupFD = cgroupFD
        let process: ContainerProcess
        do {
            process = try ContainerProcess(execID: execID, isInit: false, terminal: spec.terminal == true)
        } catch {
            throw AgentError(error, while: "ExecProcess")
        }
        _ = try launch(process, request, container: containerID)
        process.markRunning()
        monitor.withLock { container.processes[execID] = process }
        Log.info("container \(containerID): exec \(execID) (pid \(process.pid)): \(spec.args?.first ?? "")")
    }

    /// SignalProcess. An empty exec id with SIGKILL means every process of the container
    /// (Kata's "all"). SIGTERM to an init that does not handle it becomes SIGKILL: an init
    /// of a PID namespace ignores signals it has no handler for.
    public func signalProcess(containerID: String, execID: String, signal: Int32) throws(AgentError) {
        guard signal > 0, signal < 65 else { throw AgentError.invalid("signal \(signal) is not a signal number (1-64)") }
        let (container, process) = try self.process(containerID, execID)
        if execID.isEmpty, signal == SIGKILL {
            if let cgroup = container.cgroup {
                cgroup.killAll()
                return
            }
        }
        var signal = signal
        if process.isInit, signal == SIGTERM, !process.handles(SIGTERM) { signal = SIGKILL }
        try process.signal(signal)
    }

    /// WaitProcess: blocks until the process exits; its code (exit code, or 128 + signal).
    /// An exec'd process is forgotten once waited for and its output read to the end.
    public func waitProcess(containerID: String, execID: String, cancellation: Int32 = -1) throws(AgentError) -> Int32 {
        let (container, process) = try self.process(containerID, execID)
        guard let status = process.wait(cancellation: cancellation) else {
            throw AgentError(.cancelled, "WaitProcess \(containerID)/\(process.execID): the caller went away")
        }
        retireIfDone(container, process)
        return status.code
    }

    /// ReadStdout/ReadStderr: blocks until there is output; [] at end-of-file.
    public func readOutput(containerID: String, execID: String, stderr: Bool, count: Int, cancellation: Int32 = -1) throws(AgentError) -> [UInt8] {
        let (container, process) = try self.process(containerID, execID)
        guard let stream = stderr ? process.stderr : process.stdout else {
            if stderr, process.terminal { return [] }   // a terminal's output is all on stdout
            throw AgentError.precondition("process \(process.execID) has no \(stderr ? "stderr" : "stdout") stream")
        }
        let data = stream.read(count: count, exit: process.exitEvent, cancellation: cancellation)
        if data.isEmpty {
            monitor.withLock { process.outputEnded(stderr: stderr) }
            retireIfDone(container, process)
        }
        return data
    }

    /// WriteStdin: all of `data`; empty data closes stdin (as Kata's agent does).
    public func writeInput(containerID: String, execID: String, data: [UInt8]) throws(AgentError) -> Int {
        let (_, process) = try self.process(containerID, execID)
        guard let stdin = process.stdin else { throw AgentError.precondition("process \(process.execID) has no stdin") }
        if data.isEmpty {
            stdin.close()
            return 0
        }
        return try stdin.write(data)
    }

    public func closeInput(containerID: String, execID: String) throws(AgentError) {
        let (_, process) = try self.process(containerID, execID)
        process.stdin?.close()
    }

    public func resizeTerminal(containerID: String, execID: String, rows: UInt32, columns: UInt32) throws(AgentError) {
        guard rows <= UInt32(UInt16.max), columns <= UInt32(UInt16.max) else {
            throw AgentError.invalid("TtyWinResize: \(rows)x\(columns) is larger than 65535")
        }
        let (_, process) = try self.process(containerID, execID)
        guard let stdin = process.stdin, process.terminal else {
            throw AgentError(.unavailable, "no tty: process \(process.execID) was started without a terminal")
        }
        try stdin.resize(rows: UInt16(rows), columns: UInt16(columns))
    }

    private func retireIfDone(_ container: Container, _ process: ContainerProcess) {
        guard !process.isInit else { return }
        monitor.withLock {
            if process.waited, process.outputDone, container.processes[process.execID] === process {
                container.processes[process.execID] = nil
            }
        }
    }

    // MARK: resources

    public func updateContainer(containerID: String, resources: Spec.Resources) throws(AgentError) {
        let container = try container(containerID)
        guard let cgroup = container.cgroup else { throw AgentError.precondition("container \(containerID) has no cgroup (cgroup v2 is not mounted)") }
        try cgroup.apply(resources)
    }

    public struct Stats: Sendable {
        public var cgroup: CgroupStats
        public var network: [NetworkDeviceStats]
    }

    public func statsContainer(containerID: String) throws(AgentError) -> Stats {
        let container = try container(containerID)
        guard let cgroup = container.cgroup else { throw AgentError.precondition("container \(containerID) has no cgroup (cgroup v2 is not mounted)") }
        let pid = container.initProcess.pid
        let network = NetworkDeviceStats.parse(Files.readText("/proc/\(pid)/net/dev") ?? "")
        return Stats(cgroup: cgroup.stats(), network: network)
    }

    public func pauseContainer(_ id: String) throws(AgentError) { try setPaused(id, true) }
    public func resumeContainer(_ id: String) throws(AgentError) { try setPaused(id, false) }

    private func setPaused(_ id: String, _ paused: Bool) throws(AgentError) {
        let container = try container(id)
        guard let cgroup = container.cgroup else { throw AgentError.precondition("container \(id) has no cgroup: cannot be frozen") }
        try monitor.withLock { () throws(AgentError) in
            let expected: Container.State = paused ? .running : .paused
            guard container.state == expected else {
                throw AgentError.precondition("container \(id) is \(container.state.rawValue), cannot become \(paused ? "paused" : "running")")
            }
        }
        try cgroup.setFrozen(paused)
        try monitor.withLock { () throws(AgentError) in try container.transition(to: paused ? .paused : .running) }
    }

    /// GetOOMEvent: blocks until a container's cgroup records an OOM kill; its id.
    public func nextOOMEvent(isCancelled: () -> Bool = { false }) throws(AgentError) -> String {
        guard let id = oom.next(isCancelled: isCancelled) else { throw AgentError(.cancelled, "GetOOMEvent: the sandbox was destroyed or the caller went away") }
        return id
    }
}

/// One line of /proc/net/dev.
public struct NetworkDeviceStats: Equatable, Sendable {
    public var name: String
    public var receiveBytes: UInt64, receivePackets: UInt64, receiveErrors: UInt64, receiveDropped: UInt64
    public var transmitBytes: UInt64, transmitPackets: UInt64, transmitErrors: UInt64, transmitDropped: UInt64

    public static func parse(_ text: String) -> [NetworkDeviceStats] {
        text.split(separator: "\n").dropFirst(2).compactMap { line in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            let name = line[..<colon].trimmingCharacters(in: " ")
            let numbers = line[line.index(after: colon)...].split(separator: " ").compactMap { UInt64($0) }
            guard numbers.count >= 12 else { return nil }
            return NetworkDeviceStats(name: name, receiveBytes: numbers[0], receivePackets: numbers[1], receiveErrors: numbers[2],
                                      receiveDropped: numbers[3], transmitBytes: numbers[8], transmitPackets: numbers[9],
                                      transmitErrors: numbers[10], transmitDropped: numbers[11])
        }
    }
}
