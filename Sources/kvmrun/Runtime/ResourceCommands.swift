import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif
import AgentProtocol
import FoundationEssentials
import Runtime

struct UpdateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "update", abstract: "Change a container's resource limits (memory is hot-added or removed).")
    @Option(name: [.short, .long], help: "Memory limit: bytes, or with k/m/g.") var memory: String?
    @Option(name: .long, help: "CPUs, as a decimal (1.5 = quota 150000 per 100000 µs).") var cpus: Double?
    @Option(name: .long, help: "CFS quota in µs.") var cpuQuota: Int64?
    @Option(name: .long, help: "CFS period in µs.") var cpuPeriod: UInt64?
    @Option(name: .long, help: "CPU shares (relative weight).") var cpuShare: UInt64?
    @Option(name: .long, help: "Maximum number of processes.") var pidsLimit: Int64?
    @Option(name: [.short, .long], help: "A JSON file of linux.resources (\"-\" for stdin).") var resources: String?
    @Argument(help: "The container id.") var id: String

    func run() throws {
        var change = ResourceUpdate()
        if let resources {
            let bytes = resources == "-" ? readAll(STDIN_FILENO) : readFile(resources)
            struct Resources: Decodable {
                struct Memory: Decodable { var limit: Int64? }
                struct CPU: Decodable { var quota: Int64?; var period: UInt64?; var shares: UInt64? }
                struct Pids: Decodable { var limit: Int64? }
                var memory: Memory?; var cpu: CPU?; var pids: Pids?
            }
            guard let bytes, let parsed = try? JSONDecoder().decode(Resources.self, from: Data(bytes)) else {
                throw ValidationError("--resources \(resources): not a readable linux.resources JSON object")
            }
            change = ResourceUpdate(memoryLimit: parsed.memory?.limit, cpuQuota: parsed.cpu?.quota, cpuPeriod: parsed.cpu?.period,
                                    cpuShares: parsed.cpu?.shares, pidsLimit: parsed.pids?.limit)
        }
        if let memory { change.memoryLimit = try RuntimeCLI.parseBytes(memory) }
        if let cpus {
            guard cpus > 0, cpus <= 1024 else { throw ValidationError("--cpus must be above 0 and at most 1024 (got \(cpus))") }
            change.cpuPeriod = cpuPeriod ?? 100_000
            change.cpuQuota = Int64(cpus * Double(change.cpuPeriod ?? 100_000))
        }
        if let cpuQuota { change.cpuQuota = cpuQuota }
        if let cpuPeriod { change.cpuPeriod = cpuPeriod }
        if let cpuShare { change.cpuShares = cpuShare }
        if let pidsLimit { change.pidsLimit = pidsLimit }
        try RuntimeCLI.run { runtime throws(RuntimeError) in try runtime.update(id, change) }
    }
}

struct EventsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "events", abstract: "Print a container's resource statistics as runc's JSON events.")
    @Flag(name: .long, help: "Print one statistics event and exit.") var stats = false
    @Option(name: .long, help: "Seconds between events (without --stats).") var interval: String = "5s"
    @Argument(help: "The container id.") var id: String

    struct Event: Encodable {
        var type = "stats"
        var id: String
        var data: Data
        struct Data: Encodable {
            var cpu: CPU
            var memory: Memory
            var pids: Pids
        }
        struct CPU: Encodable { var usage: Usage; struct Usage: Encodable { var total: UInt64; var user: UInt64; var kernel: UInt64 } }
        struct Memory: Encodable { var usage: Entry; struct Entry: Encodable { var usage: UInt64; var max: UInt64; var limit: UInt64 } }
        struct Pids: Encodable { var current: UInt64; var limit: UInt64 }
    }

    func run() throws {
        let seconds = UInt32(interval.hasSuffix("s") ? String(interval.dropLast()) : interval) ?? 5
        while true {
            let response = try RuntimeCLI.run { runtime throws(RuntimeError) in try runtime.stats(id) }
            let cgroup = response.cgroupStats
            let event = Event(id: id, data: .init(
                cpu: .init(usage: .init(total: cgroup.cpuStats.cpuUsage.totalUsage, user: cgroup.cpuStats.cpuUsage.usageInUsermode,
                                        kernel: cgroup.cpuStats.cpuUsage.usageInKernelmode)),
                memory: .init(usage: .init(usage: cgroup.memoryStats.usage.usage, max: cgroup.memoryStats.usage.maxUsage,
                                           limit: cgroup.memoryStats.usage.limit)),
                pids: .init(current: cgroup.pidsStats.current, limit: cgroup.pidsStats.limit)))
            RuntimeCLI.printJSON(event)
            if stats { return }
            sleep(max(1, seconds))
        }
    }
}

struct FeaturesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "features", abstract: "Print what this runtime supports (the OCI features JSON).")

    struct Features: Encodable {
        var ociVersionMin = "1.0.0"
        var ociVersionMax = "1.2.0"
        var hooks = ["prestart", "createRuntime", "poststart", "poststop"]
        var mountOptions = ["ro", "rw", "bind", "rbind", "nosuid", "nodev", "noexec", "relatime", "strictatime", "noatime",
                            "private", "rprivate", "slave", "rslave", "shared", "rshared"]
        var linux = Linux()
        var annotations = ["io.kvmrun.runtime": "microvm", "org.opencontainers.runc.checkpoint.enabled": "false"]
        struct Linux: Encodable {
            var namespaces = ["cgroup", "ipc", "mount", "network", "pid", "uts"]
            var capabilities = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID",
                                "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW", "CAP_SYS_CHROOT", "CAP_MKNOD", "CAP_AUDIT_WRITE",
                                "CAP_SETFCAP", "CAP_SYS_ADMIN", "CAP_NET_ADMIN", "CAP_SYS_PTRACE"]
            var cgroup = Cgroup()
            struct Cgroup: Encodable { var v1 = false; var v2 = true; var systemd = false; var systemdUser = false }
        }
    }

    func run() throws { RuntimeCLI.printJSON(Features()) }
}

func readAll(_ fd: Int32) -> [UInt8]? {
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        // SAFETY: reads into the local chunk, at most its size.
        let count = read(fd, &chunk, chunk.count)
        if count < 0 && errno == EINTR { continue }
        if count <= 0 { break }
        bytes += chunk[0..<count]
    }
    return bytes
}
