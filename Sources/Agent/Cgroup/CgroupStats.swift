// StatsContainer's figures from a cgroup v2 directory, in the shape of Kata's CgroupStats
// (v1 names: CPU in nanoseconds, memory usage/max_usage/failcnt/limit, pids current/limit).

public struct CgroupStats: Equatable, Sendable {
    public struct CPU: Equatable, Sendable {
        public var totalNanoseconds: UInt64 = 0
        public var userNanoseconds: UInt64 = 0
        public var kernelNanoseconds: UInt64 = 0
        public var periods: UInt64 = 0
        public var throttledPeriods: UInt64 = 0
        public var throttledNanoseconds: UInt64 = 0
    }

    public struct Memory: Equatable, Sendable {
        public var usage: UInt64 = 0
        public var maxUsage: UInt64 = 0
        /// memory.events "max": how often usage hit the limit.
        public var failCount: UInt64 = 0
        public var limit: UInt64 = 0
        /// memory.stat "file": page cache.
        public var cache: UInt64 = 0
        public var stats: [String: UInt64] = [:]
    }

    public var cpu = CPU()
    public var memory = Memory()
    public var pidsCurrent: UInt64 = 0
    public var pidsLimit: UInt64 = 0

    public init() {}
}

extension Cgroup {
    public func stats() -> CgroupStats {
        var stats = CgroupStats()
        let cpu = keyed("cpu.stat")
        stats.cpu.totalNanoseconds = (cpu["usage_usec"] ?? 0) &* 1000
        stats.cpu.userNanoseconds = (cpu["user_usec"] ?? 0) &* 1000
        stats.cpu.kernelNanoseconds = (cpu["system_usec"] ?? 0) &* 1000
        stats.cpu.periods = cpu["nr_periods"] ?? 0
        stats.cpu.throttledPeriods = cpu["nr_throttled"] ?? 0
        stats.cpu.throttledNanoseconds = (cpu["throttled_usec"] ?? 0) &* 1000
        stats.memory.usage = value("memory.current") ?? 0
        stats.memory.maxUsage = value("memory.peak") ?? stats.memory.usage
        stats.memory.limit = value("memory.max") ?? 0
        stats.memory.failCount = keyed("memory.events")["max"] ?? 0
        stats.memory.stats = keyed("memory.stat")
        // memory.events' OOM kill count rides along (not a memory.stat key): the host runtime
        // reads it when a container's init has exited, to report an OOM kill to the engine.
        stats.memory.stats["oom_kill"] = keyed("memory.events")["oom_kill"] ?? 0
        stats.memory.cache = stats.memory.stats["file"] ?? 0
        stats.pidsCurrent = value("pids.current") ?? 0
        stats.pidsLimit = value("pids.max") ?? 0
        return stats
    }
}
