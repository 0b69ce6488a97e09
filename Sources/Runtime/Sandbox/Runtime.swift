#if canImport(Glibc)
import Glibc
#endif
import AgentClient
import FoundationEssentials
import Logging
import OCI
import Sys

/// The sandbox runtime: sandboxes (one microVM each, with its agent) holding containers, their
/// state on disk under `root`, every change under the sandbox's exclusive lock. Each method is
/// one runc-style operation; the CLI's verbs (and later the containerd shim) call them.
public final class Runtime {
    public let store: StateStore
    /// The guest kernel and initramfs, looked for once; only booting a sandbox needs them, so
    /// `state`, `list` and `delete` work on a machine without them.
    let located: Result<Firmware, RuntimeError>
    /// The kvmrun executable the relay processes run (`kvmrun relay`).
    public let executable: String
    public let logger: Logger
    /// Sizes new sandbox VMs get (tests and the benchmark may change them).
    public var vmDefaults = SandboxVMConfig()
    /// How long one agent call may take (CreateContainer mounts and spawns in the guest).
    public var agentCallTimeoutSeconds = 30

    public static let sandboxTypeAnnotation = "io.kubernetes.cri.container-type"
    public static let sandboxIDAnnotation = "io.kubernetes.cri.sandbox-id"

    public init(root: String, firmware: Result<Firmware, RuntimeError>, executable: String, logger: Logger) throws(RuntimeError) {
        store = try StateStore(root: root)
        located = firmware
        self.executable = executable
        self.logger = logger
    }

    public convenience init(root: String, firmware: Firmware, logger: Logger) throws(RuntimeError) {
        try self.init(root: root, firmware: .success(firmware), executable: firmware.executable, logger: logger)
    }

    /// The firmware, or the error saying where it was looked for.
    public func firmware() throws(RuntimeError) -> Firmware { try located.get() }

    /// Guest path where a container's rootfs drive is mounted.
    static func guestRootfs(_ containerID: String) -> String { "/run/kvmrun/containers/\(containerID)/rootfs" }
    static func guestShared(_ containerID: String) -> String { AgentSpec.sharedGuestDir(containerID: containerID) }

    // MARK: - Reading state, with the truth about processes that died

    /// A sandbox and its containers as they are: a VMM that died makes the sandbox and every
    /// container in it stopped; a container whose relay ended is stopped with the relay's exit
    /// status. `save` writes the corrections (the caller holds the exclusive lock).
    func refreshed(_ sandboxID: String, save: Bool) throws(RuntimeError) -> (SandboxRecord, [ContainerRecord]) {
        var sandbox = try store.loadSandbox(sandboxID)
        var containers: [ContainerRecord] = []
        for id in sandbox.containers {
            if let container = try? store.loadContainer(id, sandbox: sandboxID) { containers.append(container) }
        }
        let vmmAlive = sandbox.vmm?.isAlive ?? false
        var sandboxChanged = false
        if !vmmAlive && sandbox.state != .stopped {
            sandbox.state = .stopped
            sandboxChanged = true
        }
        for index in containers.indices {
            var container = containers[index]
            guard container.state != .stopped else { continue }
            let relayAlive = container.relay?.isAlive ?? false
            if !vmmAlive || (container.state != .configured && !relayAlive) {
                container.state = .stopped
                container.exitStatus = readExitStatus(container.exitFile) ?? (vmmAlive ? nil : 255)
                containers[index] = container
                if save { try store.save(container) }
            }
        }
        if save && sandboxChanged { try store.save(sandbox) }
        return (sandbox, containers)
    }

    func readExitStatus(_ path: String) -> Int32? {
        guard let bytes = AtomicFile.readBytes(path) else { return nil }
        return Int32(String(decoding: bytes, as: UTF8.self).split(separator: "\n").first ?? "")
    }

    /// Runs `body` with the container's sandbox locked (exclusive for changes).
    func withContainer<T>(
        _ id: String, mode: StateLock.Mode, _ body: (inout SandboxRecord, inout ContainerRecord, [ContainerRecord]) throws(RuntimeError) -> T
    ) throws(RuntimeError) -> T {
        let sandboxID = try store.sandboxID(ofContainer: id)
        let lock = try StateLock(path: store.lockPath(sandboxID), mode: mode)
        defer { lock.unlock() }
        var (sandbox, containers) = try refreshed(sandboxID, save: mode == .exclusive)
        guard var container = containers.first(where: { $0.id == id }) else { throw .notFound("container \(id)") }
        return try body(&sandbox, &container, containers)
    }

    /// The OCI `state` of a container.
    public func state(_ id: String) throws(RuntimeError) -> OCIState {
        try withContainer(id, mode: .shared) { _, container, _ throws(RuntimeError) in ociState(container) }
    }

    func ociState(_ container: ContainerRecord) -> OCIState {
        let live = container.state != .stopped && container.state != .configured
        return OCIState(id: container.id, status: container.state.ociStatus,
                        pid: live ? container.relay?.pid ?? 0 : 0, bundle: container.bundle,
                        annotations: container.annotations)
    }

    /// Every container under the root, with its state.
    public func list() -> [(OCIState, ContainerRecord)] {
        var result: [(OCIState, ContainerRecord)] = []
        for id in store.containerIDs() {
            if let entry = try? withContainer(id, mode: .shared, { _, container, _ throws(RuntimeError) in (ociState(container), container) }) {
                result.append(entry)
            }
        }
        return result
    }

    func agent(_ sandbox: SandboxRecord) throws(RuntimeError) -> AgentClient {
        guard sandbox.state != .stopped else { throw .failed(step: "reach sandbox \(sandbox.id)", reason: "its VM is not running") }
        return try SandboxVM.connect(socket: sandbox.vsockSocket, callTimeout: .seconds(agentCallTimeoutSeconds))
    }

    /// A debug line marking a phase of the runtime's work, with the system-wide monotonic time
    /// in ms (`kvmrun bench run` reads them from `--debug --log-format json` logs).
    public func phase(_ name: String) {
        logger.debug("phase \(name)", metadata: ["phase": "\(name)", "at_ms": "\(Double(MonotonicClock.now) / 1e6)"])
    }

    static func now() -> String {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        var broken = tm()
        var seconds = time.tv_sec
        gmtime_r(&seconds, &broken)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        let nanos = String(time.tv_nsec)
        return "\(broken.tm_year + 1900)-\(two(broken.tm_mon + 1))-\(two(broken.tm_mday))T\(two(broken.tm_hour)):\(two(broken.tm_min)):\(two(broken.tm_sec)).\(String(repeating: "0", count: 9 - nanos.count) + nanos)Z"
    }
}
