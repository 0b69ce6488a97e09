#if canImport(Glibc)
import Glibc
#endif
import AgentClient
import AgentProtocol
import Logging
import OCI

extension Runtime {
    /// Creates the container inside `sandbox` (locked by the caller): memory, rootfs drive,
    /// files, the agent's CreateContainer, the relay, the createRuntime/prestart hooks, the pid
    /// file. A failing step undoes the steps before it; the sandbox itself stays.
    func addContainer(
        _ options: CreateOptions, bundle: Bundle, to sandbox: inout SandboxRecord,
        preattachedSlot: (index: Int, image: String, shared: Bool)?
    ) throws(RuntimeError) {
        let id = options.id
        let sandboxID = sandbox.id
        let directory = store.sandboxDirectory(sandboxID)
        let control = VMMControl(socket: sandbox.apiSocket)
        var rollback: [() -> Void] = []
        func undo() { for step in rollback.reversed() { step() } }
        let client = try agent(sandbox)
        defer { client.close() }
        do {
            if preattachedSlot != nil, let network = sandbox.network {
                _ = try agentCall("configure the guest network", sandbox: sandbox) { () throws(AgentError) in
                    _ = try client.updateInterface(network.agentInterfaceRequest(guestName: "eth0"))
                    _ = try client.updateRoutes(network.agentRoutesRequest(guestName: "eth0"))
                }
            }
            // Memory: the container's limit is added to the sandbox VM.
            let memory = MemoryHotplug.mebibytes(forLimit: bundle.spec.linux?.resources?.memory?.limit)
            if memory > 0 {
                let before = sandbox.hotpluggedMiB
                try MemoryHotplug.resize(control, to: before + memory, step: "hot-add \(memory) MiB for container \(id)")
                sandbox.hotpluggedMiB = before + memory
                rollback.append { try? MemoryHotplug.resize(control, to: before, step: "rollback") }
            }
            // CPUs: the container's CPU limit may need more of the sandbox's vCPUs online. Those
            // stay online whatever fails later, so the count on disk is kept true.
            let vcpus = Runtime.vcpus(for: bundle.spec)
            let vcpusBefore = sandbox.vcpus
            try growVcpus(of: &sandbox, container: id, wanted: vcpus, client: client)
            if sandbox.vcpus != vcpusBefore {
                let online = sandbox.vcpus
                rollback.append { self.recordVcpus(online, sandbox: sandboxID) }
            }
            // Rootfs: slot 0 was attached at boot; otherwise a free slot gets the image.
            let slot: Int, image: String, shared: Bool
            if let preattachedSlot {
                (slot, image, shared) = preattachedSlot
            } else {
                guard let free = sandbox.blockSlots.first(where: { $0.containerID == nil && $0.index > 0 }) else {
                    throw RuntimeError.failed(step: "attach the rootfs of \(id)", reason: "all \(sandbox.blockSlots.count) drive slots of sandbox \(sandbox.id) are in use")
                }
                slot = free.index
                (image, shared) = try rootfsImage(for: id, bundle: bundle, directory: directory)
                rollback.append { if !shared { unlink(image) } }
                try control.swapDrive(free.driveID, to: image)
                let placeholder = SandboxVM.paths(directory: directory).placeholder
                rollback.append { try? control.swapDrive(free.driveID, to: placeholder) }
            }
            sandbox.blockSlots[slot].containerID = id
            // The spec for the guest, the files it needs copied, then the container itself.
            let plan = try AgentSpec.plan(bundle.spec, containerID: id, rootfsGuestPath: Runtime.guestRootfs(id),
                                          sharedGuestDir: Runtime.guestShared(id))
            // What the guest does differently from the spec is logged at info (shown with --debug
            // and in --log): on stderr it would land in the container's output under conmon.
            for warning in plan.warnings { logger.info("container \(id): \(warning)") }
            try AgentSpec.copy(plan.copies, client: client)
            var storage = Grpc_Storage()
            storage.driver = "mmioblk"
            storage.source = sandbox.blockSlots[slot].guestDevice
            storage.fstype = "ext4"
            storage.mountPoint = Runtime.guestRootfs(id)
            if bundle.spec.root?.readonly ?? false { storage.options = ["ro"] }
            var request = Grpc_CreateContainerRequest()
            request.containerID = id
            request.execID = id
            request.oci = plan.spec
            request.storages = [storage]
            try agentCall("create container \(id) in the guest", sandbox: sandbox, executable: bundle.spec.process?.args?.first) { () throws(AgentError) in try client.createContainer(request) }
            rollback.append {
                var remove = Grpc_RemoveContainerRequest()
                remove.containerID = id
                try? client.removeContainer(remove)
            }
            let exitFile = directory + "/\(id).exit"
            unlink(exitFile)
            unlink(bundle.path + "/oom")   // podman's OOM mark, from an earlier run of the bundle
            let relayConfig = RelayConfig(
                agentSocket: sandbox.vsockSocket, agentSocketIsDirect: false, containerID: id, execID: id,
                terminal: bundle.spec.process?.terminal ?? false, consoleSocket: options.consoleSocket,
                stdinOpen: true, exitFile: exitFile, oomFile: bundle.path + "/oom")
            let relayPID = try ProcessRelay.spawn(relayConfig, executable: executable, timeoutSeconds: 30)
            rollback.append { _ = Glibc.kill(relayPID, SIGKILL) }
            guard let relay = ProcessIdentity.of(relayPID) else {
                throw RuntimeError.failed(step: "start the relay of \(id)", reason: "it exited at once")
            }
            var container = ContainerRecord(
                id: id, sandboxID: sandbox.id, bundle: bundle.path, state: .configured, createdAt: Runtime.now(),
                annotations: bundle.spec.annotations ?? [:], relay: relay, exitFile: exitFile, memoryMiB: memory,
                blockSlot: slot, rootfsImage: image, rootfsImageIsShared: shared,
                terminal: bundle.spec.process?.terminal ?? false, execs: [], exitStatus: nil, vcpus: vcpus)
            try container.state.move(to: .created, container: id)
            // Hooks that run during create, in the runtime's namespace, with the created state.
            let hooks = bundle.spec.hooks
            let state = ociState(container)
            try HookRunner.run(hooks?.prestart ?? [], phase: "prestart", state: state)
            try HookRunner.run(hooks?.createRuntime ?? [], phase: "createRuntime", state: state)
            if let pidFile = options.pidFile {
                try AtomicFile.write(Array("\(relay.pid)".utf8), to: pidFile, mode: 0o644)
            }
            sandbox.containers.append(id)
            try store.save(container)
            rollback.append { self.store.removeContainerFile(id, sandbox: sandboxID) }
            try store.save(sandbox)
        } catch {
            undo()
            throw RuntimeError.step("create container \(id)", error)
        }
    }

    /// Runs agent calls, turning an AgentError into a RuntimeError naming the step.
    /// With `executable`, an agent error saying the process's file is missing or not executable
    /// (the guest's errno text) becomes `.cannotExecute`. A lost connection says what became of
    /// the sandbox's VMM (and the end of its log and console): the usual cause is a VM that died.
    func agentCall<T>(_ step: String, sandbox: SandboxRecord, executable: String? = nil, _ body: () throws(AgentError) -> T) throws(RuntimeError) -> T {
        do { return try body() } catch {
            let text = "\(error)"
            if let executable {
                if text.contains("exec \(executable): No such file or directory") {
                    throw .cannotExecute(path: executable, missing: true, detail: "\(step): \(text)")
                }
                if text.contains("exec \(executable): Permission denied") || text.contains("exec \(executable): Exec format error") {
                    throw .cannotExecute(path: executable, missing: false, detail: "\(step): \(text)")
                }
            }
            switch error {
            case .connection, .connect: throw .failed(step: step, reason: text + "; " + SandboxVM.fate(of: sandbox))
            case .call, .timeout: throw .failed(step: step, reason: text)
            }
        }
    }
}
