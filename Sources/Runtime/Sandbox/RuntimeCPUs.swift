import AgentClient
import AgentProtocol

// CPU limits and the sandbox's vCPUs. A sandbox VM is made with `maxVcpus` vCPUs and boots with
// `vcpus` of them online (the guest's `maxcpus=`); the rest wait, present and offline, until the
// containers' CPU limits need them, and the agent brings them online (OnlineCPUMem, Kata's call
// after a CPU hot-add). The vCPUs online are the base the sandbox booted with or the sum of its
// containers' limits (quota over period, rounded up), whichever is more, at most `maxVcpus`.
// CPUs are only ever added: the agent protocol has no call to take them offline, and a CPU
// limit lowered by `update` is enforced by the container's cgroup alone, as in Kata.

extension Runtime {
    /// Brings the sandbox's online vCPUs up to what its containers ask for once `id` asks for
    /// `wanted` (nil: no limit). Records the new count in `sandbox` (saved by the caller).
    func growVcpus(of sandbox: inout SandboxRecord, container id: String, wanted: Int?, client: AgentClient) throws(RuntimeError) {
        // Counts come from state files: each is clamped so that no sum can overflow.
        let limit = min(max(1, sandbox.maxVcpus ?? sandbox.vcpus), 1024)
        func bounded(_ count: Int?) -> Int { min(max(0, count ?? 0), limit) }
        let asked = sandbox.containers.filter { $0 != id }.reduce(bounded(wanted)) { sum, other in
            sum + bounded((try? store.loadContainer(other, sandbox: sandbox.id))?.vcpus)
        }
        let target = min(limit, asked)
        if asked > limit {
            logger.info("container \(id): its sandbox's containers ask for \(asked) CPUs; the VM has \(limit), all online")
        }
        guard target > sandbox.vcpus, sandbox.vcpus >= 1 else { return }
        var request = Grpc_OnlineCPUMemRequest()
        request.wait = true
        request.nbCpus = UInt32(target - sandbox.vcpus)
        request.cpuOnly = true
        try agentCall("bring \(target - sandbox.vcpus) more vCPUs online for container \(id)", sandbox: sandbox) { () throws(AgentError) in
            try client.onlineCPUMem(request)
        }
        sandbox.vcpus = target
    }

    /// Writes the sandbox's online vCPU count into its record on disk (after a failed step whose
    /// other changes are not saved).
    func recordVcpus(_ online: Int, sandbox id: String) {
        guard var record = try? store.loadSandbox(id) else { return }
        record.vcpus = online
        do { try store.save(record) } catch { logger.warning("sandbox \(id): recording \(online) vCPUs online: \(error)") }
    }
}
