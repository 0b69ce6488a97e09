// Checks of a parsed spec: what the types alone cannot say (absolute paths, known names,
// limits that make sense). Every failure names the field.

extension Spec {
    /// Throws `SpecError` for the first thing wrong, naming the field.
    public func validate() throws(SpecError) {
        guard ociVersion.hasPrefix("1.") else {
            throw SpecError(field: "ociVersion", reason: "unsupported version \"\(ociVersion)\" (expected 1.x)")
        }
        guard let root, !root.path.isEmpty else { throw SpecError(field: "root.path", reason: "required field missing") }
        guard let process else { throw SpecError(field: "process", reason: "required field missing") }
        try process.validate(field: "process")
        for (index, mount) in (mounts ?? []).enumerated() {
            let field = "mounts[\(index)]"
            try Self.absolute(mount.destination, "\(field).destination")
            if mount.type == nil, !(mount.options ?? []).contains(where: { $0 == "bind" || $0 == "rbind" }) {
                throw SpecError(field: "\(field).type", reason: "required unless options contain bind or rbind")
            }
        }
        let namespaces = linux?.namespaces ?? []
        var seen = Set<String>()
        for (index, namespace) in namespaces.enumerated() {
            let field = "linux.namespaces[\(index)].type"
            guard LinuxNames.namespaces.contains(namespace.type) else {
                throw SpecError(field: field, reason: "unknown namespace type \"\(namespace.type)\"")
            }
            guard seen.insert(namespace.type).inserted else {
                throw SpecError(field: field, reason: "namespace \"\(namespace.type)\" listed twice")
            }
            if namespace.type == "user" || namespace.type == "time" {
                throw SpecError(field: field, reason: "\(namespace.type) namespaces are not supported")
            }
        }
        if let hooks { try hooks.validate() }
        if let hostname, !hostname.isEmpty, !seen.contains("uts") {
            throw SpecError(field: "hostname", reason: "a hostname needs a private UTS namespace (add {\"type\": \"uts\"} to linux.namespaces)")
        }
        guard let linux else { return }
        if let propagation = linux.rootfsPropagation, !propagation.isEmpty, !LinuxNames.propagations.contains(propagation) {
            throw SpecError(field: "linux.rootfsPropagation", reason: "unknown propagation \"\(propagation)\"")
        }
        if !(linux.uidMappings ?? []).isEmpty || !(linux.gidMappings ?? []).isEmpty {
            throw SpecError(field: "linux.uidMappings", reason: "user namespace mappings are not supported")
        }
        if let path = linux.cgroupsPath {
            try Self.relativeInside(path, "linux.cgroupsPath")
        }
        for (index, path) in (linux.maskedPaths ?? []).enumerated() { try Self.absolute(path, "linux.maskedPaths[\(index)]") }
        for (index, path) in (linux.readonlyPaths ?? []).enumerated() { try Self.absolute(path, "linux.readonlyPaths[\(index)]") }
        for (index, device) in (linux.devices ?? []).enumerated() {
            let field = "linux.devices[\(index)]"
            guard ["c", "u", "b", "p"].contains(device.type) else {
                throw SpecError(field: "\(field).type", reason: "unknown device type \"\(device.type)\" (c, u, b or p)")
            }
            try Self.absolute(device.path, "\(field).path")
            if device.type != "p", device.major == nil || device.minor == nil {
                throw SpecError(field: "\(field).major", reason: "major and minor are required for a \(device.type) device")
            }
        }
        for key in (linux.sysctl ?? [:]).keys.sorted() where key.isEmpty || key.contains("..") || key.contains("/") {
            throw SpecError(field: "linux.sysctl", reason: "invalid key \"\(key)\"")
        }
        if let resources = linux.resources { try resources.validate(field: "linux.resources") }
    }

    static func absolute(_ path: String, _ field: String) throws(SpecError) {
        guard path.hasPrefix("/") else { throw SpecError(field: field, reason: "must be an absolute path, not \"\(path)\"") }
        guard !path.utf8.contains(0) else { throw SpecError(field: field, reason: "contains a NUL byte") }
    }

    /// A path that stays below its base: no ".." component, no NUL.
    static func relativeInside(_ path: String, _ field: String) throws(SpecError) {
        let parts = path.split(separator: "/", omittingEmptySubsequences: true)
        guard !parts.contains("..") else { throw SpecError(field: field, reason: "must not contain \"..\"") }
        guard !path.utf8.contains(0) else { throw SpecError(field: field, reason: "contains a NUL byte") }
    }
}

extension Spec.Process {
    /// Checks a process (the container's, or one to exec); `field` prefixes the names.
    public func validate(field: String) throws(SpecError) {
        guard let args, let first = args.first, !first.isEmpty else {
            throw SpecError(field: "\(field).args", reason: "must name a program (non-empty)")
        }
        try Spec.absolute(cwd, "\(field).cwd")
        for (index, entry) in (env ?? []).enumerated() where !entry.contains("=") || entry.hasPrefix("=") {
            throw SpecError(field: "\(field).env[\(index)]", reason: "must be NAME=VALUE, not \"\(entry)\"")
        }
        for (index, limit) in (rlimits ?? []).enumerated() {
            guard LinuxNames.rlimit(limit.type) != nil else {
                throw SpecError(field: "\(field).rlimits[\(index)].type", reason: "unknown rlimit \"\(limit.type)\"")
            }
            guard limit.soft <= limit.hard else {
                throw SpecError(field: "\(field).rlimits[\(index)].soft", reason: "soft limit \(limit.soft) above hard limit \(limit.hard)")
            }
        }
        if let capabilities {
            let sets: [(String, [String]?)] = [("bounding", capabilities.bounding), ("effective", capabilities.effective),
                                               ("inheritable", capabilities.inheritable), ("permitted", capabilities.permitted),
                                               ("ambient", capabilities.ambient)]
            for (name, list) in sets {
                for (index, capability) in (list ?? []).enumerated() where LinuxNames.capability(capability) == nil {
                    throw SpecError(field: "\(field).capabilities.\(name)[\(index)]", reason: "unknown capability \"\(capability)\"")
                }
            }
        }
        if let score = oomScoreAdj, !(-1000...1000).contains(score) {
            throw SpecError(field: "\(field).oomScoreAdj", reason: "must be in -1000...1000, not \(score)")
        }
        if let size = consoleSize, size.height > UInt32(UInt16.max) || size.width > UInt32(UInt16.max) {
            throw SpecError(field: "\(field).consoleSize", reason: "larger than 65535")
        }
    }
}

extension Spec.Hooks {
    /// Each hook's path absolute, its timeout above zero, its env NAME=VALUE.
    public func validate() throws(SpecError) {
        for (phase, hooks) in phases {
            for (index, hook) in hooks.enumerated() {
                let field = "hooks.\(phase)[\(index)]"
                try Spec.absolute(hook.path, "\(field).path")
                if let timeout = hook.timeout, timeout <= 0 {
                    throw SpecError(field: "\(field).timeout", reason: "must be greater than zero, not \(timeout)")
                }
                for (number, entry) in (hook.env ?? []).enumerated() where !entry.contains("=") || entry.hasPrefix("=") {
                    throw SpecError(field: "\(field).env[\(number)]", reason: "must be NAME=VALUE, not \"\(entry)\"")
                }
            }
        }
    }
}

extension Spec.Resources {
    func validate(field: String) throws(SpecError) {
        if let limit = memory?.limit, limit != -1, limit < 4096 {
            throw SpecError(field: "\(field).memory.limit", reason: "must be -1 (unlimited) or at least 4096 bytes, not \(limit)")
        }
        if let cpu {
            if let quota = cpu.quota, quota != -1, quota < 1000 {
                throw SpecError(field: "\(field).cpu.quota", reason: "must be -1 (unlimited) or at least 1000 µs, not \(quota)")
            }
            if let period = cpu.period, period != 0, !(1000...1_000_000).contains(period) {
                throw SpecError(field: "\(field).cpu.period", reason: "must be in 1000...1000000 µs, not \(period)")
            }
            if let shares = cpu.shares, shares != 0, !(2...262_144).contains(shares) {
                throw SpecError(field: "\(field).cpu.shares", reason: "must be in 2...262144, not \(shares)")
            }
        }
        if let limit = pids?.limit, limit != -1, limit < 0 {
            throw SpecError(field: "\(field).pids.limit", reason: "must be -1 (unlimited) or positive, not \(limit)")
        }
        for key in (unified ?? [:]).keys.sorted() where key.contains("/") || key.hasPrefix(".") || key.isEmpty {
            throw SpecError(field: "\(field).unified", reason: "invalid cgroup file name \"\(key)\"")
        }
    }
}
