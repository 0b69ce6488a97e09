// OCI spec → SpawnRequest: namespaces to clone flags, mounts to flags and data, the user
// from the container's /etc/passwd, capability names to bits, rlimits, the rest as is.
#if canImport(Glibc)
import Glibc
#endif
import CAgent
import OCI

public enum ContainerSetup {
    /// Namespace flags for a new container. A mount namespace is always made (the rootfs is
    /// entered with pivot_root); the network namespace is shared with the sandbox unless the
    /// spec asks for a new one (a "network" entry without a path; a path, as Kata's runtime
    /// sends for the host's namespace, means nothing in the guest and keeps the sandbox's).
    public static func cloneFlags(_ spec: Spec) -> UInt64 {
        var flags = KVMRUN_CLONE_NEWNS
        for namespace in spec.linux?.namespaces ?? [] {
            switch namespace.type {
            case "pid": flags |= KVMRUN_CLONE_NEWPID
            case "uts": flags |= KVMRUN_CLONE_NEWUTS
            case "ipc": flags |= KVMRUN_CLONE_NEWIPC
            case "cgroup": flags |= KVMRUN_CLONE_NEWCGROUP
            case "network" where (namespace.path ?? "").isEmpty: flags |= KVMRUN_CLONE_NEWNET
            default: break
            }
        }
        return flags
    }

    /// The spec's mounts as the shim takes them. "cgroup" mounts become cgroup2; a tmpfs on
    /// /dev asks for the default device nodes.
    public static func mounts(_ spec: Spec) -> (mounts: [SpawnRequest.Mount], devTmpfs: Bool) {
        var result: [SpawnRequest.Mount] = []
        var devTmpfs = false
        for mount in spec.mounts ?? [] {
            let options = MountOptions(mount.options ?? [])
            var type = mount.type
            if type == "bind" { type = nil }
            if type == "cgroup" { type = "cgroup2" }
            let bind = options.isBind || mount.type == "bind"
            var flags = options.flags
            if bind { flags |= KVMRUN_MS_BIND }
            if mount.destination == "/dev", type == "tmpfs" { devTmpfs = true }
            result.append(SpawnRequest.Mount(source: mount.source ?? type, target: mount.destination, fstype: bind ? nil : type,
                                             data: bind ? nil : options.dataString, flags: flags, propagation: options.propagation))
        }
        return (result, devTmpfs)
    }

    /// Capability names (validated by the spec) as bit sets.
    public static func capabilities(_ spec: Spec.Capabilities) -> SpawnRequest.Capabilities {
        func bits(_ names: [String]?) -> UInt64 {
            (names ?? []).reduce(0) { $0 | (LinuxNames.capability($1).map { 1 << UInt64($0) } ?? 0) }
        }
        var caps = SpawnRequest.Capabilities()
        caps.bounding = bits(spec.bounding)
        caps.effective = bits(spec.effective)
        caps.permitted = bits(spec.permitted)
        caps.inheritable = bits(spec.inheritable)
        caps.ambient = bits(spec.ambient)
        return caps
    }

    /// Who the process runs as: the spec's numbers, or Kata's string user / the spec's
    /// username resolved against the container's /etc/passwd and /etc/group under `root`.
    public static func user(_ process: Spec.Process, stringUser: StringUser?, root: String) throws(AgentError) -> Users.Resolved {
        let passwd = Users.parsePasswd(Files.readText(root + "/etc/passwd") ?? "")
        let groups = Users.parseGroup(Files.readText(root + "/etc/group") ?? "")
        if let stringUser, !stringUser.uid.isEmpty {
            return try Users.resolve(user: stringUser.uid, group: stringUser.gid, additional: stringUser.additionalGids,
                                     passwd: passwd, groups: groups)
        }
        if let name = process.user.username, !name.isEmpty {
            var resolved = try Users.resolve(user: name, group: nil, additional: [], passwd: passwd, groups: groups)
            resolved.groups = (process.user.additionalGids ?? []) + resolved.groups.filter { !(process.user.additionalGids ?? []).contains($0) }
            return resolved
        }
        let home = passwd.first { $0.uid == process.user.uid }?.home
        return Users.Resolved(uid: process.user.uid, gid: process.user.gid, groups: process.user.additionalGids ?? [], home: home)
    }

    /// The process part of a request (shared by a container's init and exec'd processes).
    /// `root` is where the container's files are seen from the agent.
    public static func process(_ process: Spec.Process, stringUser: StringUser?, root: String) throws(AgentError) -> SpawnRequest {
        let stdio: SpawnRequest.Stdio = process.terminal == true
            ? .terminal(rows: UInt16(process.consoleSize?.height ?? 0), columns: UInt16(process.consoleSize?.width ?? 0))
            : .fds(stdin: -1, stdout: -1, stderr: -1)
        var request = SpawnRequest(args: process.args ?? [], stdio: stdio)
        let user = try user(process, stringUser: stringUser, root: root)
        request.uid = user.uid
        request.gid = user.gid
        request.groups = user.groups
        request.env = process.env ?? []
        if !request.env.contains(where: { $0.hasPrefix("HOME=") }) {
            request.env.append("HOME=\(user.home ?? "/")")   // as runc does
        }
        request.cwd = process.cwd
        request.capabilities = process.capabilities.map(capabilities)
        request.noNewPrivileges = process.noNewPrivileges ?? false
        request.rlimits = (process.rlimits ?? []).compactMap { limit in
            LinuxNames.rlimit(limit.type).map { SpawnRequest.Rlimit(resource: Int32($0), soft: limit.soft, hard: limit.hard) }
        }
        request.oomScoreAdj = process.oomScoreAdj.map { Int32($0) }
        return request
    }

    /// The whole request for a container's init: the process plus the file system and
    /// namespaces. `rootfs` is the mounted root file system.
    public static func initRequest(_ spec: Spec, rootfs: String, stringUser: StringUser?) throws(AgentError) -> SpawnRequest {
        guard let process = spec.process else { throw AgentError.invalid("OCI spec: process: required field missing") }
        var request = try self.process(process, stringUser: stringUser, root: rootfs)
        request.cloneFlags = cloneFlags(spec)
        request.rootfs = rootfs
        request.rootfsReadonly = spec.root?.readonly ?? false
        if let word = spec.linux?.rootfsPropagation, !word.isEmpty {
            request.rootfsPropagation = MountOptions.propagation(word) ?? 0
        }
        let (mounts, devTmpfs) = mounts(spec)
        request.mounts = mounts
        request.defaultDevices = devTmpfs
        request.devices = (spec.linux?.devices ?? []).map { device in
            let type: UInt32 = switch device.type {
            case "b": 0o060000   // S_IFBLK
            case "p": 0o010000   // S_IFIFO
            default: 0o020000    // S_IFCHR
            }
            return SpawnRequest.Device(path: device.path, mode: type | ((device.fileMode ?? 0o666) & 0o7777),
                                       major: UInt32(truncatingIfNeeded: device.major ?? 0), minor: UInt32(truncatingIfNeeded: device.minor ?? 0),
                                       uid: device.uid ?? 0, gid: device.gid ?? 0)
        }
        request.maskedPaths = spec.linux?.maskedPaths ?? []
        request.readonlyPaths = spec.linux?.readonlyPaths ?? []
        if let hostname = spec.hostname, !hostname.isEmpty { request.hostname = hostname }
        request.sysctls = (spec.linux?.sysctl ?? [:]).sorted { $0.key < $1.key }.map { key, value in
            (path: "/proc/sys/" + key.split(separator: ".").joined(separator: "/"), value: value)
        }
        request.waitForStart = true
        return request
    }
}

/// Kata's `StringUser`: uid and gid as numbers or names, and extra groups.
public struct StringUser: Equatable, Sendable {
    public var uid: String
    public var gid: String
    public var additionalGids: [String]
    public init(uid: String, gid: String = "", additionalGids: [String] = []) {
        self.uid = uid
        self.gid = gid
        self.additionalGids = additionalGids
    }
}
