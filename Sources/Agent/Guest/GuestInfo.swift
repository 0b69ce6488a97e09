// Guest-wide calls: memory and CPU details, onlining hot-added CPUs and memory, the clock,
// and the agent's own memory figures.
#if canImport(Glibc)
import Glibc
#endif
import Sys

public enum GuestInfo {
    /// /sys/devices/system/memory/block_size_bytes (hexadecimal), 0 without memory hotplug.
    public static var memoryBlockSize: UInt64 {
        Files.readText("/sys/devices/system/memory/block_size_bytes").flatMap { UInt64($0.trimmingCharacters(), radix: 16) } ?? 0
    }

    public static var supportsHotplugProbe: Bool { Files.exists("/sys/devices/system/memory/probe") }

    /// A "Key:   value kB" line of a /proc file, in KiB.
    static func kibibytes(_ key: String, in text: String) -> UInt64? {
        for line in text.split(separator: "\n") where line.hasPrefix(key + ":") {
            return UInt64(line.dropFirst(key.count + 1).split(whereSeparator: { $0 == " " || $0 == "\t" }).first ?? "")
        }
        return nil
    }

    /// The agent's resident memory (VmRSS of /proc/self/status), KiB.
    public static var agentRSS: UInt64 { kibibytes("VmRSS", in: Files.readText("/proc/self/status") ?? "") ?? 0 }

    /// The agent's anonymous resident memory (RssAnon): what it allocated itself, without the
    /// pages of its binary it has mapped (RssFile, RssShmem), KiB.
    public static var agentAnonymousRSS: UInt64 { kibibytes("RssAnon", in: Files.readText("/proc/self/status") ?? "") ?? 0 }

    /// The guest's used memory, MemTotal - MemAvailable, KiB.
    public static var usedMemory: UInt64 {
        let text = Files.readText("/proc/meminfo") ?? ""
        let total = kibibytes("MemTotal", in: text) ?? 0
        let available = kibibytes("MemAvailable", in: text) ?? 0
        return total > available ? total - available : 0
    }

    /// /proc/meminfo fields that say where the guest's memory goes (KiB), for the figures.
    public static let memoryBreakdownKeys = ["MemTotal", "MemFree", "MemAvailable", "Buffers", "Cached", "Shmem", "Slab",
                                             "SReclaimable", "SUnreclaim", "KernelStack", "PageTables", "AnonPages", "Percpu"]

    public static var memoryBreakdown: [(key: String, kib: UInt64)] {
        let text = Files.readText("/proc/meminfo") ?? ""
        return memoryBreakdownKeys.compactMap { key in kibibytes(key, in: text).map { (key, $0) } }
    }

    /// Free pages held in the per-CPU free lists (the "count" of every pageset in
    /// /proc/zoneinfo), KiB: free memory that MemFree and MemAvailable do not count.
    public static var perCPUFreeLists: UInt64 {
        var pages: UInt64 = 0
        for line in (Files.readText("/proc/zoneinfo", limit: 1 << 22) ?? "").split(separator: "\n") {
            let words = line.split(separator: " ")
            if words.count == 2, words[0] == "count:", let count = UInt64(words[1]) { pages += count }
        }
        return pages * 4
    }

    /// OnlineCPUMem, with Kata's meaning: `cpus` is how many CPUs the host added and the agent
    /// brings online (the lowest-numbered offline ones; writing `online` returns once the CPU
    /// runs), failing when fewer are offline; unless `cpuOnly`, every offline memory block too.
    public static func onlineCPUsAndMemory(cpus: UInt32, cpuOnly: Bool) throws(AgentError) {
        var onlinedCPUs = 0
        if cpus > 0 {
            let offline = (Files.list("/sys/devices/system/cpu") ?? [])
                .compactMap { name in name.hasPrefix("cpu") ? Int(name.dropFirst(3)) : nil }
                .sorted()
                .map { "/sys/devices/system/cpu/cpu\($0)/online" }
                .filter { Files.readText($0)?.trimmingCharacters() == "0" }
            for path in offline.prefix(Int(cpus)) { onlinedCPUs += onlineIfOffline(path) }
            if onlinedCPUs < Int(cpus) {
                throw AgentError.precondition("OnlineCPUMem: \(onlinedCPUs) of the \(cpus) CPUs asked for could be onlined "
                    + "(\(offline.count) were offline; \(onlineCPUCount) online now)")
            }
        }
        var onlinedBlocks = 0
        if !cpuOnly {
            for name in Files.list("/sys/devices/system/memory") ?? [] where name.hasPrefix("memory") {
                onlinedBlocks += onlineIfOffline("/sys/devices/system/memory/\(name)/online")
            }
        }
        Log.info("OnlineCPUMem: onlined \(onlinedCPUs) CPUs and \(onlinedBlocks) memory blocks; \(onlineCPUCount) CPUs online")
    }

    /// CPUs listed in /sys/devices/system/cpu/online ("0-3,5").
    public static var onlineCPUCount: Int {
        let text = Files.readText("/sys/devices/system/cpu/online")?.trimmingCharacters() ?? ""
        return text.split(separator: ",").reduce(0) { count, range in
            let bounds = range.split(separator: "-").compactMap { Int($0) }
            return count + (bounds.count == 2 ? bounds[1] - bounds[0] + 1 : bounds.count)
        }
    }

    private static func onlineIfOffline(_ path: String) -> Int {
        guard Files.readText(path)?.trimmingCharacters() == "0" else { return 0 }
        do {
            try Files.write("1", to: path)
            return 1
        } catch {
            Log.error("OnlineCPUMem: \(error)")
            return 0
        }
    }

    /// SetGuestDateTime: settimeofday.
    public static func setDateTime(seconds: Int64, microseconds: Int64) throws(AgentError) {
        guard (0..<1_000_000).contains(microseconds) else {
            throw AgentError.invalid("SetGuestDateTime: usec \(microseconds) is not in 0...999999")
        }
        var time = timeval(tv_sec: Int(seconds), tv_usec: Int(microseconds))
        guard settimeofday(&time, nil) == 0 else {
            throw AgentError(SystemError(call: "settimeofday \(seconds).\(microseconds)", errno: errno), while: "SetGuestDateTime")
        }
    }
}
