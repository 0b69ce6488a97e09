#if canImport(Glibc)
import Glibc
#endif
import AgentClient
import AgentProtocol
import Logging
import OCI

extension Runtime {
    /// `delete`: the container's processes ended, its resources given back (drive slot, image,
    /// memory), its state removed, poststop hooks run. Deleting the last container of a sandbox
    /// (or the sandbox's own container, with `force` taking the others along) stops the VM and
    /// removes the sandbox: VMM, TAP and redirects, images, files. A running container needs
    /// `force`.
    public func delete(_ id: String, force: Bool) throws(RuntimeError) {
        let sandboxID = try store.sandboxID(ofContainer: id)
        let lock = try StateLock(path: store.lockPath(sandboxID), mode: .exclusive)
        defer { lock.unlock() }
        guard let loaded = try? refreshed(sandboxID, save: true) else {
            // The id points at a sandbox whose state is gone (a crash between steps): drop the id.
            store.release(container: id)
            return
        }
        var (sandbox, containers) = loaded
        guard let container = containers.first(where: { $0.id == id }) else {
            store.release(container: id)
            return
        }
        if (container.state == .running || container.state == .paused) && !force {
            throw .failed(step: "delete container \(id)", reason: "it is \(container.state.rawValue) (stop it first, or use --force)")
        }
        let isSandboxContainer = sandbox.containers.first == id
        let others = containers.filter { $0.id != id }
        if isSandboxContainer && !others.isEmpty && !force {
            throw .failed(step: "delete sandbox container \(id)", reason: "containers \(others.map(\.id).joined(separator: ", ")) still belong to its sandbox (delete them first, or use --force)")
        }
        let takesSandbox = isSandboxContainer || others.isEmpty
        let victims = takesSandbox ? containers : [container]
        if sandbox.state == .paused, sandbox.vmm?.isAlive ?? false {
            try? VMMControl(socket: sandbox.apiSocket).setPaused(false)
            sandbox.state = .running
        }
        let client = sandbox.state == .stopped ? nil : try? SandboxVM.connect(socket: sandbox.vsockSocket)
        defer { client?.close() }
        for victim in victims {
            endProcesses(victim, client: client)
        }
        var problems: [String] = []
        if takesSandbox {
            if let vmm = sandbox.vmm {
                let how = SandboxVM.stop(vmm: vmm, apiSocket: sandbox.apiSocket, vsockSocket: sandbox.vsockSocket, logger: logger)
                logger.debug("sandbox \(sandboxID) VM stopped: \(how)")
            }
            sandbox.state = .stopped
            if let network = sandbox.network { problems += network.detach() }
            for victim in victims where !victim.rootfsImageIsShared {
                if let image = victim.rootfsImage { unlink(image) }
            }
        } else {
            problems += releaseResources(container, sandbox: &sandbox, client: client)
        }
        guard problems.isEmpty else {
            try? store.save(sandbox)
            throw .failed(step: "delete container \(id)", reason: problems.joined(separator: "; ") + " (run delete --force again)")
        }
        for victim in victims {
            let hooks = (try? Bundle(victim.bundle))?.spec.hooks
            var state = ociState(victim)
            state.status = ContainerState.stopped.ociStatus
            for warning in HookRunner.runIgnoringFailures(hooks?.poststop ?? [], phase: "poststop", state: state) {
                logger.warning("container \(victim.id): \(warning)")
            }
            store.removeContainerFile(victim.id, sandbox: sandboxID)
            unlink(victim.exitFile)
            for exec in victim.execs { unlink(exec.exitFile) }
        }
        if takesSandbox {
            store.removeSandboxDirectory(sandboxID)
            for victim in victims { store.release(container: victim.id) }
        } else {
            sandbox.containers.removeAll { $0 == id }
            try store.save(sandbox)
            store.release(container: id)
        }
    }

    /// Ends a container's init and exec processes (SIGKILL through the agent) and their relays.
    func endProcesses(_ container: ContainerRecord, client: AgentClient?) {
        let relays = [container.relay].compactMap { $0 } + container.execs.map(\.relay)
        if container.state != .stopped, let client {
            var request = Grpc_SignalProcessRequest()
            request.containerID = container.id
            request.signal = UInt32(SIGKILL)
            try? client.signalProcess(request, timeout: .after(.seconds(5)))
        }
        for relay in relays where relay.isAlive {
            // The relay ends by itself once WaitProcess returns; give it time to relay the exit.
            if !SandboxVM.waitGone(relay, milliseconds: client == nil ? 0 : 5000) {
                Glibc.kill(relay.pid, SIGKILL)
                _ = SandboxVM.waitGone(relay, milliseconds: 2000)
            }
        }
    }

    /// Gives back what one container of a live sandbox held: the guest container, its drive
    /// slot (back to the empty placeholder), its image copy, its hot-added memory.
    func releaseResources(_ container: ContainerRecord, sandbox: inout SandboxRecord, client: AgentClient?) -> [String] {
        var problems: [String] = []
        if let client {
            var request = Grpc_RemoveContainerRequest()
            request.containerID = container.id
            request.timeout = 10
            do { try client.removeContainer(request) } catch {
                if error.description.contains("not found") == false { problems.append("remove container \(container.id) in the guest: \(error)") }
            }
        }
        let control = VMMControl(socket: sandbox.apiSocket)
        if let slot = container.blockSlot, slot < sandbox.blockSlots.count {
            let placeholder = SandboxVM.paths(directory: store.sandboxDirectory(sandbox.id)).placeholder
            do {
                try control.swapDrive(sandbox.blockSlots[slot].driveID, to: placeholder)
                sandbox.blockSlots[slot].containerID = nil
            } catch {
                problems.append("detach the rootfs drive of \(container.id): \(error)")
            }
        }
        if !container.rootfsImageIsShared, let image = container.rootfsImage { unlink(image) }
        if container.memoryMiB > 0 {
            let target = sandbox.hotpluggedMiB >= container.memoryMiB ? sandbox.hotpluggedMiB - container.memoryMiB : 0
            do {
                try MemoryHotplug.resize(control, to: target, step: "give back the \(container.memoryMiB) MiB of \(container.id)")
                sandbox.hotpluggedMiB = target
            } catch {
                // The guest may hold on to memory still in use; the request stays lowered and the
                // next resize counts from it.
                logger.warning("\(error)")
                sandbox.hotpluggedMiB = target
            }
        }
        return problems
    }
}
