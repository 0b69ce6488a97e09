// The agent's state: the sandbox (one per agent, as Kata has it) and its containers, behind
// one lock. Container lifecycle here; processes and stdio in SandboxProcesses.swift.
#if canImport(Glibc)
import Glibc
#endif
import OCI
import Sys

public final class Sandbox: @unchecked Sendable {
    public struct Configuration: Sendable {
        /// Where container cgroups go (nil: no cgroups, e.g. tests on a host without v2 delegation).
        public var cgroupRoot: String?
        /// The cgroup (below the root) of containers whose spec names none: `<parent>/<id>`.
        public var cgroupParent = "kvmrun"
        /// Base of per-container directories (bundle, default rootfs mount point).
        public var stateDirectory = "/run/kvmrun/containers"
        public init(cgroupRoot: String?) { self.cgroupRoot = cgroupRoot }
    }

    let configuration: Configuration
    let reaper: Reaper
    public let storages = Storages()
    public let oom: OOMWatcher
    let monitor = Monitor()
    var containers: [String: Container] = [:]
    public private(set) var sandboxID = ""
    public private(set) var hostname = ""
    var sandboxStorages: [String] = []

    public init(configuration: Configuration, reaper: Reaper) throws(SystemError) {
        self.configuration = configuration
        self.reaper = reaper
        oom = try OOMWatcher()
    }

    // MARK: sandbox

    public struct SandboxRequest: Sendable {
        public var id = ""
        public var hostname = ""
        public var dns: [String] = []
        public var storages: [StorageRequest] = []
        public var sharedPidNamespace = false
        public var kernelModules: [String] = []
        public init() {}
    }

    public func createSandbox(_ request: SandboxRequest) throws(AgentError) {
        guard !request.sharedPidNamespace else {
            throw AgentError(.unimplemented, "CreateSandbox: sandbox_pidns (a shared PID namespace with a pause process) is not supported")
        }
        guard request.kernelModules.isEmpty else {
            throw AgentError(.unimplemented, "CreateSandbox: kernel_modules: the guest kernel has no module support (\(request.kernelModules.joined(separator: ", ")))")
        }
        if !request.hostname.isEmpty {
            guard sethostname(request.hostname, request.hostname.utf8.count) == 0 else {
                throw AgentError(SystemError(call: "sethostname \(request.hostname)", errno: errno), while: "CreateSandbox")
            }
        }
        if !request.dns.isEmpty {
            let text = request.dns.map { $0.hasPrefix("nameserver") || $0.hasPrefix("search") || $0.hasPrefix("options") ? $0 : "nameserver \($0)" }
            do {
                try Files.makeDirectories("/etc")
                try Files.create("/etc/resolv.conf", Array((text.joined(separator: "\n") + "\n").utf8))
            } catch {
                throw AgentError(error, while: "CreateSandbox dns")
            }
        }
        var mounted: [String] = []
        for storage in request.storages {
            do {
                mounted.append(try storages.mount(storage))
            } catch {
                for point in mounted.reversed() { storages.release(point) }
                throw error
            }
        }
        monitor.withLock {
            sandboxID = request.id
            hostname = request.hostname
            sandboxStorages += mounted
        }
        Log.info("sandbox \(request.id.isEmpty ? "(no id)" : request.id) created\(request.hostname.isEmpty ? "" : ", hostname \(request.hostname)")")
    }

    /// Removes every container, releases the sandbox's storages, wakes GetOOMEvent callers.
    public func destroySandbox() {
        let ids = monitor.withLock { containers.keys.sorted() }
        for id in ids {
            do {
                try removeContainer(id, timeoutSeconds: 10)
            } catch {
                Log.error("DestroySandbox: \(error)")
            }
        }
        let points = monitor.withLock { () -> [String] in
            defer { sandboxStorages = [] }
            return sandboxStorages
        }
        for point in points.reversed() { storages.release(point) }
        oom.cancelWaiters()
        Log.info("sandbox destroyed")
    }

    // MARK: containers

    func container(_ id: String) throws(AgentError) -> Container {
        guard let container = monitor.withLock({ containers[id] }) else {
            throw AgentError.notFound("container \(id) not found")
        }
        return container
    }

    public var containerIDs: [String] { monitor.withLock { containers.keys.sorted() } }

    public struct ContainerRequest: Sendable {
        public var id: String
        public var execID: String
        public var spec: Spec
        public var storages: [StorageRequest] = []
        public var stringUser: StringUser?
        public init(id: String, execID: String = "", spec: Spec) {
            self.id = id
            self.execID = execID
            self.spec = spec
        }
    }

    /// CreateContainer: storages mounted, cgroup made and limited, the init cloned into its
    /// namespaces and set up, stopped just before exec until StartContainer.
    public func createContainer(_ request: ContainerRequest) throws(AgentError) {
        let id = request.id
        guard Self.isValidID(id) else { throw AgentError.invalid("container id \"\(id)\" must be 1-128 characters of [A-Za-z0-9_.-]") }
        do {
            try request.spec.validate()
        } catch {
            throw AgentError.invalid(error.description)
        }
        try monitor.withLock { () throws(AgentError) in
            guard containers[id] == nil else { throw AgentError(.alreadyExists, "container \(id) already exists") }
        }
        var cleanup = Cleanup()
        defer { cleanup.run() }
        var mounted: [String] = []
        for storage in request.storages {
            let point = try storages.mount(storage)
            mounted.append(point)
            cleanup.add { [storages] in storages.release(point) }
        }
        let rootfs = try rootfsPath(request.spec, id: id)
        let cgroup = try makeCgroup(request.spec, id: id)
        if let cgroup { cleanup.add { cgroup.remove() } }
        var spawn = try ContainerSetup.initRequest(request.spec, rootfs: rootfs, stringUser: request.stringUser)
        let cgroupFD = try cgroup?.openDirectory() ?? -1
        defer { if cgroupFD >= 0 { close(cgroupFD) } }
        spawn.cgroupFD = cgroupFD
        let execID = request.execID.isEmpty ? id : request.execID
        let process: ContainerProcess
        do {
            process = try ContainerProcess(execID: execID, isInit: true, terminal: request.spec.process?.terminal == true)
        } catch {
            throw AgentError(error, while: "CreateContainer")
        }
        let (pending, outcome) = try launch(process, spawn, container: id)
        guard outcome == .waitingForStart else {
            throw AgentError.failed("container \(id): the init exec'd before StartContainer")
        }
        let container = Container(id: id, spec: request.spec, rootfs: rootfs, cgroup: cgroup, initProcess: process, storages: mounted)
        container.pendingStart = pending
        container.captureNamespaces()
        process.onExit = { [weak self, weak container] status in
            guard let self, let container else { return }
            self.initExited(container, status)
        }
        try monitor.withLock { () throws(AgentError) in
            guard containers[id] == nil else { throw AgentError(.alreadyExists, "container \(id) already exists") }
            containers[id] = container
        }
        cleanup.cancel()
        if let cgroup { oom.watch(containerID: id, cgroup: cgroup) }
        Log.info("container \(id) created (init pid \(process.pid))")
    }

    /// StartContainer: the init execs its program.
    public func startContainer(_ id: String) throws(AgentError) {
        let container = try container(id)
        let pending = try monitor.withLock { () throws(AgentError) -> PendingSpawn in
            guard container.state == .created, let pending = container.pendingStart else {
                throw AgentError.precondition("container \(id) is \(container.state.rawValue), cannot become running")
            }
            return pending
        }
        do {
            try pending.start()
        } catch {
            throw AgentError.failed("container \(id): \(error)")
        }
        try monitor.withLock { () throws(AgentError) in
            container.pendingStart = nil
            if container.state == .created { try container.transition(to: .running) }
        }
        container.initProcess.markRunning()
        Log.info("container \(id) started")
    }

    /// RemoveContainer: every process killed and waited for (up to `timeoutSeconds`, 0 for
    /// no limit), then the cgroup, mounts and state are gone.
    public func removeContainer(_ id: String, timeoutSeconds: UInt32) throws(AgentError) {
        let container = try container(id)
        // Dropping the start gate makes a never-started init exit (its end of the socket closes).
        monitor.withLock { container.pendingStart = nil }
        if let cgroup = container.cgroup {
            _ = try? cgroup.setFrozen(false)
            cgroup.killAll()
        }
        try? container.initProcess.signal(SIGKILL)
        let deadline = timeoutSeconds == 0 ? nil : Int(timeoutSeconds) * 1000
        let processes = monitor.withLock { [container.initProcess] + Array(container.processes.values) }
        for process in processes where !waitForExit(process, milliseconds: deadline) {
            throw AgentError(.deadlineExceeded, "RemoveContainer \(id): process \(process.execID) (pid \(process.pid)) still runs after \(timeoutSeconds) s")
        }
        for process in processes {
            process.stdout?.cancel()
            process.stderr?.cancel()
            process.stdin?.close()
        }
        oom.unwatch(containerID: id)
        container.cgroup?.remove()
        for point in container.storages.reversed() { storages.release(point) }
        monitor.withLock {
            container.closeNamespaces()
            containers[id] = nil
        }
        Log.info("container \(id) removed")
    }

    private func waitForExit(_ process: ContainerProcess, milliseconds: Int?) -> Bool {
        let step = 10
        var waited = 0
        while process.exitStatus == nil {
            if process.pid == 0 { return true }
            if let milliseconds, waited >= milliseconds { return false }
            usleep(useconds_t(step * 1000))
            waited += step
        }
        return true
    }

    private func initExited(_ container: Container, _ status: WaitStatus) {
        let oomKilled = oom.check(containerID: container.id) || (status.signal == SIGKILL && (container.cgroup?.oomKills ?? 0) > 0)
        monitor.withLock { try? container.transition(to: .stopped) }
        if oomKilled { Log.info("container \(container.id): init was killed by the OOM killer") }
    }

    // MARK: helpers

    static func isValidID(_ id: String) -> Bool {
        !id.isEmpty && id.utf8.count <= 128 && id.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x61 && byte <= 0x7a) || byte == 0x2d || byte == 0x5f || byte == 0x2e
        } && id != "." && id != ".."
    }

    /// spec.root.path: absolute as given (Kata: a storage's mount point), relative to the
    /// container's directory otherwise. It must be a directory.
    func rootfsPath(_ spec: Spec, id: String) throws(AgentError) -> String {
        let path = spec.root?.path ?? ""
        let rootfs = path.hasPrefix("/") ? path : configuration.stateDirectory + "/" + id + "/" + path
        guard Files.isDirectory(rootfs) else {
            throw AgentError.invalid("container \(id): root.path \(rootfs) is not a directory (is its storage mounted?)")
        }
        return rootfs
    }

    func makeCgroup(_ spec: Spec, id: String) throws(AgentError) -> Cgroup? {
        guard let root = configuration.cgroupRoot else { return nil }
        var relative = spec.linux?.cgroupsPath ?? ""
        // "slice:prefix:name" is systemd's form, which the guest has no systemd for.
        if relative.contains(":") || relative.split(separator: "/").isEmpty { relative = "\(configuration.cgroupParent)/\(id)" }
        let cgroup = try Cgroup.create(root: root, relative: relative)
        if let resources = spec.linux?.resources {
            do {
                try cgroup.apply(resources)
            } catch {
                cgroup.remove()
                throw error
            }
        }
        return cgroup
    }

    /// Clones the process (registry locked until its pid is known) and reads its reports
    /// until it waits for start or has exec'd; a failed step is thrown as the child named it
    /// ("container c1: exec \"nope\": executable file not found in $PATH").
    func launch(_ process: ContainerProcess, _ request: SpawnRequest, container id: String) throws(AgentError) -> (PendingSpawn, PendingSpawn.Outcome) {
        var request = request
        let io = try ProcessIO.prepare(&request)
        let pending: PendingSpawn
        do {
            pending = try reaper.launching(process) { () throws(SpawnError) in
                let pending = try Spawner.launch(request)
                return (pending.pid, pending.pidfd, pending)
            }
        } catch {
            io.closeAll()
            throw AgentError.failed("container \(id): \(error)")
        }
        io.closeChildEnds()
        let outcome: PendingSpawn.Outcome
        do {
            outcome = try pending.finish()
        } catch {
            // The child reported the failure and exits 127; the reaper collects it.
            io.closeAgentEnds()
            process.attach(pid: pending.pid, pidfd: pending.pidfd, stdin: nil, stdout: nil, stderr: nil)
            throw AgentError.failed("container \(id): \(error)")
        }
        let streams = try io.streams(console: pending.takeConsole())
        process.attach(pid: pending.pid, pidfd: pending.pidfd, stdin: streams.0, stdout: streams.1, stderr: streams.2)
        return (pending, outcome)
    }
}

/// Undo steps run in reverse unless cancelled (a create that fails half-way).
struct Cleanup {
    private var steps: [() -> Void] = []
    mutating func add(_ step: @escaping () -> Void) { steps.append(step) }
    mutating func cancel() { steps = [] }
    mutating func run() {
        for step in steps.reversed() { step() }
        steps = []
    }
}
