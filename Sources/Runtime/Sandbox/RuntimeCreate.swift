#if canImport(Glibc)
import Glibc
#endif
import AgentClient
import AgentProtocol
import Logging
import OCI
import OCIJSON

public struct CreateOptions: Sendable {
    public var id: String
    public var bundle: String
    public var pidFile: String?
    public var consoleSocket: String?

    public init(id: String, bundle: String, pidFile: String? = nil, consoleSocket: String? = nil) {
        self.id = id
        self.bundle = bundle
        self.pidFile = pidFile
        self.consoleSocket = consoleSocket
    }
}

/// A bundle read and checked: its spec and its rootfs directory.
struct Bundle {
    var path: String
    var spec: Spec
    var rootfs: String

    init(_ path: String) throws(RuntimeError) {
        guard path.hasPrefix("/") else { throw .invalidInput("bundle \(path): must be an absolute path") }
        self.path = path
        guard let bytes = AtomicFile.readBytes(path + "/config.json") else {
            throw .invalidInput("bundle \(path): cannot read config.json (\(errnoText()))")
        }
        // Decoded, not yet validated: AgentSpec.plan drops what the guest cannot have (user
        // namespaces, ID mappings) and then validates; the error names the bundle either way.
        do throws(RuntimeError) { spec = try AgentSpec.load(configJSON: bytes) } catch {
            throw .invalidInput("bundle \(path): \(error)")
        }
        guard let root = spec.root, !root.path.isEmpty else { throw .invalidInput("bundle \(path)/config.json: root.path is missing") }
        rootfs = root.path.hasPrefix("/") ? root.path : path + "/" + root.path
        guard spec.process != nil else { throw .invalidInput("bundle \(path)/config.json: process is missing") }
    }

    var netnsPath: String? {
        spec.linux?.namespaces?.first { $0.type == "network" }?.path.flatMap { $0.isEmpty ? nil : $0 }
    }
}

extension Runtime {
    /// `create`: the container's sandbox (a new one, or the pod's when the annotations name
    /// one), its memory hot-added, its rootfs attached, its init process created in the guest
    /// and waiting for `start`, and its relay process, whose pid goes to the pid file.
    public func create(_ options: CreateOptions) throws(RuntimeError) {
        try StateStore.checkID(options.id)
        let bundle = try Bundle(options.bundle)
        let annotations = bundle.spec.annotations ?? [:]
        switch annotations[Runtime.sandboxTypeAnnotation] {
        case "container":
            guard let sandboxID = annotations[Runtime.sandboxIDAnnotation], !sandboxID.isEmpty else {
                throw .invalidInput("\(Runtime.sandboxTypeAnnotation)=container needs \(Runtime.sandboxIDAnnotation)")
            }
            let ownerSandbox = try store.sandboxID(ofContainer: sandboxID)
            try store.claim(container: options.id, sandbox: ownerSandbox)
            do throws(RuntimeError) {
                let lock = try StateLock(path: store.lockPath(ownerSandbox), mode: .exclusive)
                defer { lock.unlock() }
                var (sandbox, _) = try refreshed(ownerSandbox, save: true)
                guard sandbox.state != .stopped else { throw RuntimeError.failed(step: "add container \(options.id) to sandbox \(ownerSandbox)", reason: "the sandbox is stopped") }
                try addContainer(options, bundle: bundle, to: &sandbox, preattachedSlot: nil)
            } catch {
                store.release(container: options.id)
                throw error
            }
        default:
            try createSandbox(options, bundle: bundle)
        }
    }

    /// A new sandbox for the container; everything is rolled back when any step fails.
    func createSandbox(_ options: CreateOptions, bundle: Bundle) throws(RuntimeError) {
        let sandboxID = options.id
        try store.claim(container: options.id, sandbox: sandboxID)
        var rollback: [() -> Void] = [{ self.store.release(container: sandboxID) }]
        func undo() { for step in rollback.reversed() { step() } }
        do {
            try store.createSandboxDirectory(sandboxID)
            rollback.append { self.store.removeSandboxDirectory(sandboxID) }
            let lock = try StateLock(path: store.lockPath(sandboxID), mode: .exclusive)
            defer { lock.unlock() }
            let directory = store.sandboxDirectory(sandboxID)
            try StateStore.makeDirectory(directory + "/disks")
            var config = vmDefaults
            config.vcpus = max(config.vcpus, min(config.maxVcpus, Runtime.vcpus(for: bundle.spec) ?? 1))
            if let netns = bundle.netnsPath, try SandboxNetwork.scan(netnsPath: netns) != nil {
                let network = try SandboxNetwork.attach(netnsPath: netns, tapName: "tap0_kvmrun")
                rollback.append { for problem in network.detach() { self.logger.warning("rollback: \(problem)") } }
                config.network = network
            }
            let (image, shared) = try rootfsImage(for: options.id, bundle: bundle, directory: directory)
            rollback.append { if !shared { unlink(image) } }
            config.firstImage = (image, bundle.spec.root?.readonly ?? false)
            let files = SandboxVM.paths(directory: directory)
            phase("vmm-spawn")
            let (vmm, client, slots) = try SandboxVM.boot(config, directory: directory, firmware: try firmware(), logger: logger)
            phase("agent-ready")
            rollback.append { SandboxVM.stop(vmm: vmm, apiSocket: files.api, vsockSocket: files.vsock, logger: self.logger) }
            client.close()
            var sandbox = SandboxRecord(
                id: sandboxID, state: .ready, createdAt: Runtime.now(), vmm: vmm, apiSocket: files.api,
                vsockSocket: files.vsock, consoleLog: files.console, vcpus: config.vcpus,
                baseMemoryMiB: config.baseMemoryMiB, hotplugRegionMiB: config.hotplugRegionMiB, hotpluggedMiB: 0,
                blockSlots: slots, network: config.network, containers: [], maxVcpus: max(config.vcpus, config.maxVcpus))
            try store.save(sandbox)
            try addContainer(options, bundle: bundle, to: &sandbox, preattachedSlot: (0, image, shared))
            phase("created")
            logger.info("sandbox \(sandboxID) created", metadata: ["vmm": "\(vmm.pid)"])
        } catch {
            undo()
            throw RuntimeError.step("create sandbox \(sandboxID)", error)
        }
    }

    /// The image a container's rootfs drive gets: the shared cached image for a read-only root,
    /// else its own copy in the sandbox's disks directory.
    func rootfsImage(for id: String, bundle: Bundle, directory: String) throws(RuntimeError) -> (String, Bool) {
        let cached = try RootfsImage.cached(rootfs: bundle.rootfs, imagesDirectory: store.root + "/images")
        if bundle.spec.root?.readonly ?? false { return (cached, true) }
        let own = "\(directory)/disks/\(id).ext4"
        try RootfsImage.copy(cached, to: own)
        return (own, false)
    }

    /// vCPUs a spec's CPU limit asks for: its quota over its period, rounded up, at least 1, at
    /// most the host's online CPUs; nil without a quota.
    static func vcpus(for spec: Spec) -> Int? {
        let cpu = spec.linux?.resources?.cpu
        return vcpus(quota: cpu?.quota, period: cpu?.period)
    }

    static func vcpus(quota: Int64?, period: UInt64?) -> Int? {
        guard let quota, quota > 0 else { return nil }
        let period = Int64(clamping: max(1, period ?? 100_000))
        let wanted = quota / period + (quota % period == 0 ? 0 : 1)
        return Int(min(max(1, wanted), Int64(max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN))))))
    }
}
