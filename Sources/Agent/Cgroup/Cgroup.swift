// A container's cgroup (v2): created below the agent's cgroup root with the controllers it
// needs enabled on the way down, OCI resources written as cgroup v2 files, statistics read
// back, freeze/thaw, kill, removal.
#if canImport(Glibc)
import Glibc
#endif
import OCI
import Sys

public final class Cgroup: @unchecked Sendable {
    /// Absolute path of the cgroup directory.
    public let path: String
    /// The controllers available to it (what its parent enabled).
    public let controllers: Set<String>

    /// The controllers a container cgroup gets when its root offers them.
    static let wanted = ["cpu", "cpuset", "memory", "pids", "io"]

    /// Creates `root/relative` (mkdir -p), enabling the wanted controllers in the
    /// subtree_control of `root` and of each directory on the way.
    public static func create(root: String, relative: String) throws(AgentError) -> Cgroup {
        let parts = relative.split(separator: "/").map(String.init)
        guard !parts.isEmpty, !parts.contains(".."), !parts.contains(".") else {
            throw AgentError.invalid("cgroup path \"\(relative)\" must be relative, without \".\" or \"..\"")
        }
        var current = root
        for part in parts {
            enable(in: current)
            current += "/" + part
            if mkdir(current, 0o755) != 0, errno != EEXIST {
                throw AgentError(SystemError(call: "mkdir \(current)", errno: errno), while: "create cgroup")
            }
        }
        let available = Set((Files.readText(current + "/cgroup.controllers") ?? "").split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init))
        return Cgroup(path: current, controllers: available)
    }

    init(path: String, controllers: Set<String>) {
        self.path = path
        self.controllers = controllers
    }

    private static func enable(in directory: String) {
        let offered = Set((Files.readText(directory + "/cgroup.controllers") ?? "").split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init))
        let enabled = Set((Files.readText(directory + "/cgroup.subtree_control") ?? "").split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init))
        let missing = wanted.filter { offered.contains($0) && !enabled.contains($0) }
        guard !missing.isEmpty else { return }
        do {
            try Files.write(missing.map { "+" + $0 }.joined(separator: " "), to: directory + "/cgroup.subtree_control")
        } catch {
            Log.error("cgroup: enabling \(missing) in \(directory): \(error)")
        }
    }

    /// An fd of the directory for clone3(CLONE_INTO_CGROUP). The caller closes it.
    public func openDirectory() throws(AgentError) -> Int32 {
        do {
            return try sys("open \(path)") { open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
        } catch {
            throw AgentError(error, while: "open cgroup")
        }
    }

    // MARK: resources

    /// The cgroup v2 files and values for OCI resources (runc's conversions), in write order.
    public static func files(for resources: Spec.Resources) -> [(file: String, value: String)] {
        var files: [(String, String)] = []
        if let memory = resources.memory {
            if let limit = memory.limit, limit != 0 { files.append(("memory.max", limit < 0 ? "max" : String(limit))) }
            if let reservation = memory.reservation, reservation != 0 { files.append(("memory.low", reservation < 0 ? "max" : String(reservation))) }
            if let swap = memory.swap, swap != 0 {
                // OCI's swap is memory+swap (v1 semantics); v2's memory.swap.max is swap alone.
                if swap < 0 {
                    files.append(("memory.swap.max", "max"))
                } else if let limit = memory.limit, limit > 0, swap >= limit {
                    files.append(("memory.swap.max", String(swap - limit)))
                }
            }
            if memory.disableOOMKiller == true { files.append(("memory.oom.group", "0")) }
        }
        if let cpu = resources.cpu {
            if let shares = cpu.shares, shares != 0 {
                // runc: weight = 1 + ((shares - 2) * 9999) / 262142, shares in 2...262144.
                files.append(("cpu.weight", String(1 + ((max(shares, 2) - 2) * 9999) / 262_142)))
            }
            let period = cpu.period ?? 0
            if let quota = cpu.quota, quota != 0 || period != 0 {
                files.append(("cpu.max", "\(quota > 0 ? String(quota) : "max") \(period != 0 ? period : 100_000)"))
            } else if period != 0 {
                files.append(("cpu.max", "max \(period)"))
            }
            if let cpus = cpu.cpus, !cpus.isEmpty { files.append(("cpuset.cpus", cpus)) }
            if let mems = cpu.mems, !mems.isEmpty { files.append(("cpuset.mems", mems)) }
        }
        if let pids = resources.pids, pids.limit != 0 {
            files.append(("pids.max", pids.limit < 0 ? "max" : String(pids.limit)))
        }
        for (file, value) in (resources.unified ?? [:]).sorted(by: { $0.key < $1.key }) { files.append((file, value)) }
        return files
    }

    /// Writes the resources; throws naming the first file that could not be written.
    public func apply(_ resources: Spec.Resources) throws(AgentError) {
        for (file, value) in Self.files(for: resources) {
            let controller = String(file.prefix(while: { $0 != "." }))
            guard controller == "cgroup" || controllers.contains(controller) else {
                throw AgentError.invalid("cgroup: \(file) needs the \(controller) controller, which \(path) does not have")
            }
            do {
                try Files.write(value, to: path + "/" + file)
            } catch {
                throw AgentError(error, while: "set \(file) to \(value)")
            }
        }
    }

    // MARK: state

    public func read(_ file: String) -> String? { Files.readText(path + "/" + file) }

    public func value(_ file: String) -> UInt64? {
        guard let text = read(file)?.trimmingCharacters() else { return nil }
        return text == "max" ? UInt64.max : UInt64(text)
    }

    public func keyed(_ file: String) -> [String: UInt64] { Files.keyValues(read(file) ?? "") }

    /// The memory.events oom_kill counter.
    public var oomKills: UInt64 { keyed("memory.events")["oom_kill"] ?? 0 }

    public var processes: [Int32] {
        (read("cgroup.procs") ?? "").split(separator: "\n").compactMap { Int32($0) }
    }

    /// Freezes (true) or thaws the cgroup and waits until the kernel reports it done.
    public func setFrozen(_ frozen: Bool) throws(AgentError) {
        do {
            try Files.write(frozen ? "1" : "0", to: path + "/cgroup.freeze")
        } catch {
            throw AgentError(error, while: frozen ? "PauseContainer" : "ResumeContainer")
        }
        for _ in 0..<500 {
            if keyed("cgroup.events")["frozen"] == (frozen ? 1 : 0) { return }
            usleep(2000)
        }
        throw AgentError(.deadlineExceeded, "\(path): cgroup.events did not report frozen=\(frozen ? 1 : 0) within 1 s")
    }

    /// SIGKILL to every process in the cgroup (cgroup.kill, else one by one).
    public func killAll() {
        if (try? Files.write("1", to: path + "/cgroup.kill")) != nil { return }
        for pid in processes { kill(pid, SIGKILL) }
    }

    /// rmdir, retried while the last processes are still leaving.
    public func remove() {
        for _ in 0..<200 {
            if rmdir(path) == 0 || errno == ENOENT { return }
            if errno != EBUSY { break }
            usleep(5000)
        }
        Log.error("cgroup: cannot remove \(path): errno \(errno)")
    }
}
