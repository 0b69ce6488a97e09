#if canImport(Glibc)
import Glibc
#endif
import AgentClient
import AgentProtocol
import Logging
import OCI

extension Runtime {
    /// `start`: the created container's init process runs (StartContainer), then poststart hooks.
    public func start(_ id: String) throws(RuntimeError) {
        try withContainer(id, mode: .exclusive) { sandbox, container, _ throws(RuntimeError) in
            guard container.state == .created else {
                throw RuntimeError.invalidTransition(what: "container \(id)", from: container.state.rawValue, to: ContainerState.running.rawValue)
            }
            let client = try agent(sandbox)
            defer { client.close() }
            var request = Grpc_StartContainerRequest()
            request.containerID = id
            let executable = (try? Bundle(container.bundle))?.spec.process?.args?.first
            try agentCall("start container \(id)", sandbox: sandbox, executable: executable) { () throws(AgentError) in try client.startContainer(request) }
            try container.state.move(to: .running, container: id)
            try store.save(container)
            if sandbox.state == .ready {
                try sandbox.state.move(to: .running, sandbox: sandbox.id)
                try store.save(sandbox)
            }
            // A failing poststart hook fails start and stops the container (runtime spec
            // 1.3.0, as runc does); its record stays for `delete`, which runs poststop.
            let hooks = (try? Bundle(container.bundle))?.spec.hooks
            do throws(RuntimeError) {
                try HookRunner.run(hooks?.poststart ?? [], phase: "poststart", state: ociState(container))
            } catch {
                var signal = Grpc_SignalProcessRequest()
                signal.containerID = id
                signal.signal = UInt32(SIGKILL)
                try? client.signalProcess(signal)
                throw error
            }
        }
    }

    /// `kill`: a signal to the container's init process (and, with `all`, to its exec'd
    /// processes). A stopped container cannot be signalled.
    public func kill(_ id: String, signal: Int32, all: Bool) throws(RuntimeError) {
        try withContainer(id, mode: .shared) { sandbox, container, _ throws(RuntimeError) in
            guard container.state == .created || container.state == .running || container.state == .paused else {
                throw RuntimeError.failed(step: "kill container \(id)", reason: "container not running (state \(container.state.rawValue))")
            }
            let client = try agent(sandbox)
            defer { client.close() }
            let targets = [id] + (all ? container.execs.filter { $0.relay.isAlive }.map(\.execID) : [])
            for execID in targets {
                var request = Grpc_SignalProcessRequest()
                request.containerID = id
                request.execID = execID == id ? "" : execID
                request.signal = UInt32(signal)
                try agentCall("signal \(signal) to \(execID == id ? "container \(id)" : "exec \(execID)")", sandbox: sandbox) { () throws(AgentError) in
                    try client.signalProcess(request)
                }
            }
        }
    }

    /// `pause` / `resume`: the container's cgroup frozen or thawed; when every container of the
    /// sandbox is paused, the VM's vCPUs are paused too (and resumed before anything else).
    public func pause(_ id: String) throws(RuntimeError) {
        try withContainer(id, mode: .exclusive) { sandbox, container, containers throws(RuntimeError) in
            guard container.state == .running else {
                throw RuntimeError.invalidTransition(what: "container \(id)", from: container.state.rawValue, to: ContainerState.paused.rawValue)
            }
            let client = try agent(sandbox)
            defer { client.close() }
            var request = Grpc_PauseContainerRequest()
            request.containerID = id
            try agentCall("pause container \(id)", sandbox: sandbox) { () throws(AgentError) in try client.pauseContainer(request) }
            try container.state.move(to: .paused, container: id)
            try store.save(container)
            let others = containers.filter { $0.id != id && $0.state != .stopped }
            if others.allSatisfy({ $0.state == .paused }), sandbox.state == .running {
                try VMMControl(socket: sandbox.apiSocket).setPaused(true)
                try sandbox.state.move(to: .paused, sandbox: sandbox.id)
                try store.save(sandbox)
            }
        }
    }

    public func resume(_ id: String) throws(RuntimeError) {
        try withContainer(id, mode: .exclusive) { sandbox, container, _ throws(RuntimeError) in
            guard container.state == .paused else {
                throw RuntimeError.invalidTransition(what: "container \(id)", from: container.state.rawValue, to: ContainerState.running.rawValue)
            }
            if sandbox.state == .paused {
                try VMMControl(socket: sandbox.apiSocket).setPaused(false)
                try sandbox.state.move(to: .running, sandbox: sandbox.id)
                try store.save(sandbox)
            }
            let client = try agent(sandbox)
            defer { client.close() }
            var request = Grpc_ResumeContainerRequest()
            request.containerID = id
            try agentCall("resume container \(id)", sandbox: sandbox) { () throws(AgentError) in try client.resumeContainer(request) }
            try container.state.move(to: .running, container: id)
            try store.save(container)
        }
    }
}
