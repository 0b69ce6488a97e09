// OCI process and resources → their grpc messages, field for field (proto3 zero is "not set"
// on the agent's side, as the OCI optionals are), with what the guest cannot apply noted.
import AgentProtocol
import OCI

extension AgentSpec {
    /// For exec: an OCI process (process.json of `runc exec --process`) as the agent's
    /// Grpc_Process. Also the container's init process in `plan`. AppArmor and SELinux labels
    /// are not sent (the guest kernel has neither); umask has no field in the protocol.
    public static func process(_ process: OCI.Spec.Process) -> Grpc_Process {
        var proto = Grpc_Process()
        proto.terminal = process.terminal ?? false
        if let size = process.consoleSize {
            proto.consoleSize = .with {
                $0.height = size.height
                $0.width = size.width
            }
        }
        proto.user = .with {
            $0.uid = process.user.uid
            $0.gid = process.user.gid
            $0.additionalGids = process.user.additionalGids ?? []
            $0.username = process.user.username ?? ""
        }
        proto.args = process.args ?? []
        proto.env = process.env ?? []
        proto.cwd = process.cwd
        if let capabilities = process.capabilities {
            proto.capabilities = .with {
                $0.bounding = capabilities.bounding ?? []
                $0.effective = capabilities.effective ?? []
                $0.inheritable = capabilities.inheritable ?? []
                $0.permitted = capabilities.permitted ?? []
                $0.ambient = capabilities.ambient ?? []
            }
        }
        proto.rlimits = (process.rlimits ?? []).map { limit in
            .with {
                $0.type = limit.type
                $0.hard = limit.hard
                $0.soft = limit.soft
            }
        }
        proto.noNewPrivileges = process.noNewPrivileges ?? false
        proto.oomScoreAdj = Int64(process.oomScoreAdj ?? 0)
        return proto
    }

    /// What `process` leaves out, as warnings (for the container's init).
    static func processWarnings(_ process: OCI.Spec.Process, _ warnings: inout [String]) {
        if let profile = process.apparmorProfile, !profile.isEmpty {
            warnings.append("process.apparmorProfile \(profile): not applied (the guest kernel has no AppArmor; the VM is the boundary)")
        }
        if let label = process.selinuxLabel, !label.isEmpty {
            warnings.append("process.selinuxLabel \(label): not applied (the guest has no SELinux)")
        }
        if let umask = process.user.umask, umask != 0o022 {
            warnings.append("process.user.umask \(String(umask, radix: 8)): not applied (the agent's protocol has no field for it; processes get 022)")
        }
    }

    /// Memory, CPU and pids limits as they are; host CPU and memory-node lists and cgroup v2
    /// files by name have no meaning or no field in the guest.
    static func resources(_ resources: OCI.Spec.Resources, warnings: inout [String]) -> Grpc_LinuxResources {
        var proto = Grpc_LinuxResources()
        if let memory = resources.memory {
            proto.memory = .with {
                $0.limit = memory.limit ?? 0
                $0.reservation = memory.reservation ?? 0
                $0.swap = memory.swap ?? 0
                $0.kernel = memory.kernel ?? 0
                $0.kernelTcp = memory.kernelTCP ?? 0
                $0.swappiness = memory.swappiness ?? 0
                $0.disableOomKiller = memory.disableOOMKiller ?? false
            }
        }
        if let cpu = resources.cpu {
            proto.cpu = .with {
                $0.shares = cpu.shares ?? 0
                $0.quota = cpu.quota ?? 0
                $0.period = cpu.period ?? 0
                $0.realtimeRuntime = cpu.realtimeRuntime ?? 0
                $0.realtimePeriod = cpu.realtimePeriod ?? 0
            }
            if let cpus = cpu.cpus, !cpus.isEmpty {
                warnings.append("linux.resources.cpu.cpus \(cpus): dropped (host CPU numbers; the guest's vCPUs are its own)")
            }
            if let mems = cpu.mems, !mems.isEmpty {
                warnings.append("linux.resources.cpu.mems \(mems): dropped (host memory nodes; the guest has one)")
            }
        }
        if let pids = resources.pids {
            proto.pids.limit = pids.limit
        }
        if let unified = resources.unified, !unified.isEmpty {
            warnings.append("linux.resources.unified \(unified.keys.sorted().joined(separator: ", ")): dropped (the agent's protocol has no field for cgroup files by name)")
        }
        return proto
    }
}
