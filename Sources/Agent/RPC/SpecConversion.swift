// Kata's protobuf messages to the agent's own types: grpc.Spec → OCI.Spec (proto3 has no
// "absent" for scalars, so zero values mean "not set" where the OCI spec has optionals),
// Storage, StringUser, LinuxResources.
import AgentProtocol
import OCI

extension Spec {
    public init(_ proto: Grpc_Spec) {
        self.init(ociVersion: proto.version.isEmpty ? "1.0.2" : proto.version)
        if proto.hasProcess { process = Spec.Process(proto.process) }
        if proto.hasRoot { root = Spec.Root(path: proto.root.path, readonly: proto.root.readonly) }
        hostname = proto.hostname.isEmpty ? nil : proto.hostname
        mounts = proto.mounts.map { Spec.Mount(destination: $0.destination, type: $0.type.isEmpty ? nil : $0.type,
                                               source: $0.source.isEmpty ? nil : $0.source, options: $0.options) }
        annotations = proto.annotations.isEmpty ? nil : proto.annotations
        if proto.hasLinux { linux = Spec.Linux(proto.linux) }
    }
}

extension Spec.Process {
    public init(_ proto: Grpc_Process) {
        self.init(terminal: proto.terminal, args: proto.args, env: proto.env, cwd: proto.cwd.isEmpty ? "/" : proto.cwd)
        if proto.hasConsoleSize { consoleSize = Spec.Box(height: proto.consoleSize.height, width: proto.consoleSize.width) }
        user = Spec.User(uid: proto.user.uid, gid: proto.user.gid, additionalGids: proto.user.additionalGids,
                         username: proto.user.username.isEmpty ? nil : proto.user.username)
        if proto.hasCapabilities {
            let caps = proto.capabilities
            capabilities = Spec.Capabilities(bounding: caps.bounding, effective: caps.effective, inheritable: caps.inheritable,
                                             permitted: caps.permitted, ambient: caps.ambient)
        }
        rlimits = proto.rlimits.map { Spec.Rlimit(type: $0.type, hard: $0.hard, soft: $0.soft) }
        noNewPrivileges = proto.noNewPrivileges
        oomScoreAdj = proto.oomScoreAdj == 0 ? nil : Int(clamping: proto.oomScoreAdj)
    }
}

extension Spec.Linux {
    init(_ proto: Grpc_Linux) {
        self.init(sysctl: proto.sysctl.isEmpty ? nil : proto.sysctl,
                  resources: proto.hasResources ? Spec.Resources(proto.resources) : nil,
                  cgroupsPath: proto.cgroupsPath.isEmpty ? nil : proto.cgroupsPath,
                  namespaces: proto.namespaces.map { Spec.Namespace(type: $0.type, path: $0.path.isEmpty ? nil : $0.path) },
                  devices: proto.devices.map { Spec.Device(type: $0.type, path: $0.path, major: $0.major, minor: $0.minor,
                                                           fileMode: $0.fileMode == 0 ? nil : $0.fileMode, uid: $0.uid, gid: $0.gid) },
                  rootfsPropagation: proto.rootfsPropagation.isEmpty ? nil : proto.rootfsPropagation,
                  maskedPaths: proto.maskedPaths, readonlyPaths: proto.readonlyPaths)
        if !proto.uidMappings.isEmpty { uidMappings = proto.uidMappings.map { Spec.IDMapping(containerID: $0.containerID, hostID: $0.hostID, size: $0.size) } }
        if !proto.gidMappings.isEmpty { gidMappings = proto.gidMappings.map { Spec.IDMapping(containerID: $0.containerID, hostID: $0.hostID, size: $0.size) } }
    }
}

extension Spec.Resources {
    public init(_ proto: Grpc_LinuxResources) {
        self.init()
        if proto.hasMemory {
            let memory = proto.memory
            var value = Spec.Resources.Memory(limit: memory.limit == 0 ? nil : memory.limit,
                                              reservation: memory.reservation == 0 ? nil : memory.reservation,
                                              swap: memory.swap == 0 ? nil : memory.swap)
            value.disableOOMKiller = memory.disableOomKiller ? true : nil
            self.memory = value
        }
        if proto.hasCpu {
            let cpu = proto.cpu
            self.cpu = Spec.Resources.CPU(shares: cpu.shares == 0 ? nil : cpu.shares, quota: cpu.quota == 0 ? nil : cpu.quota,
                                          period: cpu.period == 0 ? nil : cpu.period, cpus: cpu.cpus.isEmpty ? nil : cpu.cpus,
                                          mems: cpu.mems.isEmpty ? nil : cpu.mems)
        }
        if proto.hasPids, proto.pids.limit != 0 { pids = Spec.Resources.Pids(limit: proto.pids.limit) }
    }
}

extension StorageRequest {
    init(_ proto: Grpc_Storage) {
        self.init(driver: proto.driver, driverOptions: proto.driverOptions, source: proto.source, fstype: proto.fstype,
                  options: proto.options, mountPoint: proto.mountPoint)
    }
}

extension StringUser {
    /// nil when the message carries no user (uid empty).
    init?(_ proto: Grpc_StringUser, present: Bool) {
        guard present, !proto.uid.isEmpty else { return nil }
        self.init(uid: proto.uid, gid: proto.gid, additionalGids: proto.additionalGids)
    }
}
