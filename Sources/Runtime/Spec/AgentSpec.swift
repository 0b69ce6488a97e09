// An OCI bundle's config.json as the guest agent takes it (Kata's grpc.Spec), for a microVM
// that shares no file system with the host: the rootfs is the agent's block storage, host files
// that are bind-mounted are copied into the guest first, and what names host objects
// (namespace paths, cgroup paths, host devices) is replaced or dropped, each with a warning.
import AgentProtocol
import OCI

/// A host file, directory or symbolic link to recreate in the guest (CopyFile) before the
/// container is created.
public struct GuestFileCopy: Sendable, Equatable {
    public var hostPath: String
    public var guestPath: String
    public init(hostPath: String, guestPath: String) {
        self.hostPath = hostPath
        self.guestPath = guestPath
    }
}

/// What the runtime sends for one container.
public struct GuestContainerPlan: Sendable {
    /// What CreateContainerRequest.oci gets.
    public var spec: Grpc_Spec
    /// Host files to put in the guest (`AgentSpec.copy`) before CreateContainer, in order.
    public var copies: [GuestFileCopy]
    /// What was dropped or changed, one line each, for the log.
    public var warnings: [String]
}

public enum AgentSpec {
    /// The one guest directory the agent's CopyFile writes below (Kata's KATA_GUEST_SHARE_DIR).
    public static let guestShareRoot = "/run/kata-containers/shared/containers"
    /// A bind-mounted host directory (or file) is copied if it holds at most this many bytes…
    public static let copyLimitBytes: Int64 = 8 << 20
    /// …and at most this many files, directories and links.
    public static let copyLimitFiles = 256

    /// The guest directory for a container's copied files.
    public static func sharedGuestDir(containerID: String) -> String { "\(guestShareRoot)/\(containerID)" }

    /// rootfsGuestPath: where the agent mounts the container's rootfs block device (the runtime
    /// passes a Grpc_Storage with that mount_point; spec.root.path becomes it).
    /// sharedGuestDir: a guest directory below `guestShareRoot` for copied files.
    public static func plan(_ spec: OCI.Spec, containerID: String, rootfsGuestPath: String,
                            sharedGuestDir: String) throws(RuntimeError) -> GuestContainerPlan {
        try checkID(containerID)
        try checkGuestPath(rootfsGuestPath, "rootfs guest path")
        try checkGuestPath(sharedGuestDir, "shared guest directory")
        guard sharedGuestDir.hasPrefix(guestShareRoot + "/") else {
            throw .invalidInput("shared guest directory \(sharedGuestDir): must be below \(guestShareRoot) (the only place the agent's CopyFile writes)")
        }
        var warnings: [String] = []
        var spec = spec
        // What the guest cannot have is dropped before the spec is checked, so a podman
        // config with a user namespace is sent without it rather than refused.
        if var linux = spec.linux {
            linux.namespaces = namespaces(linux, warnings: &warnings)
            linux.uidMappings = nil
            linux.gidMappings = nil
            spec.linux = linux
        }
        do {
            try spec.validate()
        } catch {
            throw .invalidInput("config.json: \(error.field.isEmpty ? "" : error.field + ": ")\(error.reason)")
        }
        guard let process = spec.process, let root = spec.root else {
            throw .invalidInput("config.json: process and root are required")   // validate() says which
        }

        var proto = Grpc_Spec()
        proto.version = spec.ociVersion
        proto.process = self.process(process)
        processWarnings(process, &warnings)
        proto.root.path = rootfsGuestPath
        proto.root.readonly = root.readonly ?? false
        proto.hostname = spec.hostname ?? ""
        if let domainname = spec.domainname, !domainname.isEmpty {
            warnings.append("domainname \(domainname): not set (the agent's protocol has no field for it)")
        }
        let mounts = try GuestMounts.translate(spec.mounts ?? [], sharedGuestDir: sharedGuestDir)
        proto.mounts = mounts.mounts
        warnings += mounts.warnings
        proto.annotations = spec.annotations ?? [:]
        if let linux = spec.linux {
            proto.linux = self.linux(linux, containerID: containerID, warnings: &warnings)
        } else {
            proto.linux.cgroupsPath = cgroupsPath(containerID)
        }
        return GuestContainerPlan(spec: proto, copies: mounts.copies, warnings: warnings)
    }

    /// The guest's cgroup of a container, whatever the host's (systemd's
    /// "machine.slice:libpod:ID" or a cgroupfs path) was.
    static func cgroupsPath(_ containerID: String) -> String { "/kvmrun/\(containerID)" }

    static func linux(_ linux: OCI.Spec.Linux, containerID: String, warnings: inout [String]) -> Grpc_Linux {
        var proto = Grpc_Linux()
        proto.sysctl = linux.sysctl ?? [:]
        if let resources = linux.resources { proto.resources = self.resources(resources, warnings: &warnings) }
        proto.cgroupsPath = cgroupsPath(containerID)
        proto.namespaces = (linux.namespaces ?? []).map { namespace in .with { $0.type = namespace.type } }
        proto.devices = GuestDevices.keep(linux.devices ?? [], warnings: &warnings)
        proto.rootfsPropagation = linux.rootfsPropagation ?? ""
        proto.maskedPaths = linux.maskedPaths ?? []
        proto.readonlyPaths = linux.readonlyPaths ?? []
        if let label = linux.mountLabel, !label.isEmpty {
            warnings.append("linux.mountLabel \(label): not applied (the guest has no SELinux)")
        }
        return proto
    }

    /// The namespaces the guest gets: the network one is the sandbox's (shared by its
    /// containers), user and time namespaces the agent does not make, and a host path
    /// (/proc/PID/ns/…, /run/netns/…) means nothing in the guest. Paths are cleared here.
    static func namespaces(_ linux: OCI.Spec.Linux, warnings: inout [String]) -> [OCI.Spec.Namespace] {
        var kept: [OCI.Spec.Namespace] = []
        var hadUser = false
        for namespace in linux.namespaces ?? [] {
            let path = namespace.path.flatMap { $0.isEmpty ? nil : $0 }
            switch namespace.type {
            case "network":
                // A new one (no path) is what the guest gives anyway: the VM's own network,
                // loopback only unless the sandbox mirrored a namespace's interfaces into it.
                if let path {
                    warnings.append("linux.namespaces: network namespace \(path) not joined in the guest: the container shares the sandbox VM's network (which mirrors the sandbox's namespace)")
                }
            case "user":
                hadUser = true
            case "time":
                warnings.append("linux.namespaces: time namespace dropped (the agent does not create time namespaces; the guest has its own clocks)")
            default:
                if let path {
                    warnings.append("linux.namespaces: \(namespace.type) namespace path \(path) dropped (a host path); the container gets a new \(namespace.type) namespace in the guest")
                }
                kept.append(OCI.Spec.Namespace(type: namespace.type))
            }
        }
        if hadUser || !(linux.uidMappings ?? []).isEmpty || !(linux.gidMappings ?? []).isEmpty {
            warnings.append("linux.namespaces: user namespace and its ID mappings dropped (the agent does not create user namespaces); the container's IDs are the guest's, the VM is the boundary")
        }
        return kept
    }

    static func checkID(_ id: String) throws(RuntimeError) {
        let valid = !id.isEmpty && id.utf8.count <= 128 && id != "." && id != ".." && id.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x61 && byte <= 0x7a)
                || byte == 0x2d || byte == 0x5f || byte == 0x2e
        }
        guard valid else {
            throw .invalidInput("container id \"\(id)\": must be 1 to 128 letters, digits, '-', '_' or '.'")
        }
    }

    /// An absolute path without empty, "." or ".." components (what the agent accepts).
    static func checkGuestPath(_ path: String, _ what: String) throws(RuntimeError) {
        let parts = path.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
        guard path.hasPrefix("/"), path.count > 1, !parts.contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }),
              !path.utf8.contains(0) else {
            throw .invalidInput("\(what) \"\(path)\": must be a canonical absolute path")
        }
    }
}
