// A container: its spec, rootfs, cgroup, init process and exec'd processes, and its
// lifecycle as a state with one transition function that refuses the rest (naming both
// states). Guarded by the sandbox's lock; blocking work (waits, reads) happens outside it.
#if canImport(Glibc)
import Glibc
#endif
import OCI

public final class Container: @unchecked Sendable {
    public enum State: String, Equatable, Sendable {
        case created, running, paused, stopped
    }

    public let id: String
    public let spec: Spec
    public let rootfs: String
    public let cgroup: Cgroup?
    public let initProcess: ContainerProcess
    /// Exec'd processes by exec id (the init is not in here).
    var processes: [String: ContainerProcess] = [:]
    /// Mount points of this container's storages (released on removal).
    let storages: [String]
    /// fds of the init's namespaces (ipc, uts, net, pid, cgroup, mnt) for exec'd processes.
    var namespaceFDs: [Int32] = []
    /// The init's start gate until StartContainer.
    var pendingStart: PendingSpawn?
    public private(set) var state: State = .created

    init(id: String, spec: Spec, rootfs: String, cgroup: Cgroup?, initProcess: ContainerProcess, storages: [String]) {
        self.id = id
        self.spec = spec
        self.rootfs = rootfs
        self.cgroup = cgroup
        self.initProcess = initProcess
        self.storages = storages
    }

    deinit { closeNamespaces() }

    func closeNamespaces() {
        for fd in namespaceFDs where fd >= 0 { close(fd) }
        namespaceFDs = []
    }

    /// Moves to `next` if the lifecycle allows it; throws naming both states otherwise.
    func transition(to next: State) throws(AgentError) {
        let allowed: Bool = switch (state, next) {
        case (.created, .running), (.created, .stopped): true
        case (.running, .paused), (.paused, .running): true
        case (.running, .stopped), (.paused, .stopped): true
        default: false
        }
        guard allowed else {
            throw AgentError.precondition("container \(id) is \(state.rawValue), cannot become \(next.rawValue)")
        }
        state = next
    }

    /// The process for an exec id ("" and the init's exec id both mean the init).
    func process(_ execID: String) -> ContainerProcess? {
        if execID.isEmpty || execID == initProcess.execID { return initProcess }
        return processes[execID]
    }

    /// Opens the init's namespaces, for later exec'd processes to join.
    func captureNamespaces() {
        let pid = initProcess.pid
        namespaceFDs = ["ipc", "uts", "net", "pid", "cgroup", "mnt"].map { open("/proc/\(pid)/ns/\($0)", O_RDONLY | O_CLOEXEC) }
    }
}
