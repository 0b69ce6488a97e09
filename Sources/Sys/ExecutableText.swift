#if canImport(Glibc)
import Glibc
#endif

/// Lets go of the executable's pages that only start-up used, once the VM is set up. Start-up
/// (the Swift runtime, argument parsing, the machine's set-up) touches code and constant data
/// spread over the whole 15 MB static executable, and the kernel maps file pages 64 KiB around
/// every fault, so a running VMM kept ~7 MiB of its executable resident that it never used
/// again. `MADV_DONTNEED` drops those page-table entries; the pages stay in the page cache
/// (shared, reclaimable) and whatever runs later (vCPU loop, devices, event loop) faults back
/// in from there.
///
/// Only pages that still hold the file's bytes are dropped: those that /proc/self/pagemap shows
/// present and file-backed. A page that was written — relocations applied at start-up in the
/// RELRO mapping (read-only afterwards), or .data — has become anonymous and stays. In a
/// writable mapping a page could be written between that check and the advice, and
/// `MADV_DONTNEED` would then discard the write; so a writable mapping gets `MADV_DONTNEED`
/// only while the process has a single thread, and `MADV_PAGEOUT` otherwise, which reclaims a
/// clean file page (when no other process maps it) but never loses data: a page written
/// meanwhile is anonymous and is swapped out or, with no swap, left alone.
public enum ExecutableText {
    public struct Mapping: Equatable, Sendable {
        public var start: UInt
        public var end: UInt
        public var writable: Bool

        public init(start: UInt, end: UInt, writable: Bool) {
            self.start = start
            self.end = end
            self.writable = writable
        }
    }

    /// The mappings of `executable` in a /proc/PID/maps text.
    public static func mappings(maps: String, executable: String) -> [Mapping] {
        var result: [Mapping] = []
        for line in maps.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 6, fields[5...].joined(separator: " ") == executable,
                  let dash = fields[0].firstIndex(of: "-"),
                  let start = UInt(fields[0][..<dash], radix: 16),
                  let end = UInt(fields[0][fields[0].index(after: dash)...], radix: 16), end > start
            else { continue }
            result.append(Mapping(start: start, end: end, writable: fields[1].dropFirst().first == "w"))
        }
        return result
    }

    /// Page runs (first page index, count) whose pagemap entries are present and file-backed.
    public static func cleanFileRuns(pagemap entries: [UInt64]) -> [(first: Int, count: Int)] {
        var runs: [(first: Int, count: Int)] = []
        var index = 0
        while index < entries.count {
            let clean = { (entry: UInt64) in entry & (1 << 63) != 0 && entry & (1 << 61) != 0 }
            guard clean(entries[index]) else { index += 1; continue }
            let first = index
            while index < entries.count && clean(entries[index]) { index += 1 }
            runs.append((first, index - first))
        }
        return runs
    }

    /// Drops this process's resident, unmodified pages of its executable; returns the bytes
    /// dropped (0 when /proc is unavailable or nothing matched).
    @discardableResult
    public static func releaseResidentPages() -> UInt {
        var buffer = [CChar](repeating: 0, count: 4096)
        let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard count > 0, let maps = readTextFile("/proc/self/maps") else { return 0 }
        let executable = String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let singleThreaded = threadCount() == 1
        var released: UInt = 0
        for mapping in mappings(maps: maps, executable: executable) {
            let advice = mapping.writable && !singleThreaded ? MADV_PAGEOUT : MADV_DONTNEED
            released += releaseCleanPages(mapping, advice: advice)
        }
        return released
    }

    private static func releaseCleanPages(_ mapping: Mapping, advice: Int32) -> UInt {
        let pageSize = UInt(sysconf(Int32(_SC_PAGESIZE)))
        let pages = Int((mapping.end - mapping.start) / pageSize)
        let fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC)
        guard fd >= 0, pages > 0 else { return 0 }
        defer { close(fd) }
        var entries = [UInt64](repeating: 0, count: pages)
        let wanted = pages * 8
        // SAFETY: reads at most `wanted` bytes into the array's own storage of that size.
        let got = entries.withUnsafeMutableBytes { pread(fd, $0.baseAddress, wanted, off_t(mapping.start / pageSize * 8)) }
        guard got == wanted else { return 0 }
        var released: UInt = 0
        for run in cleanFileRuns(pagemap: entries) {
            let start = mapping.start + UInt(run.first) * pageSize, length = UInt(run.count) * pageSize
            if advise(start, length, advice) { released += length }
        }
        return released
    }

    private static func advise(_ start: UInt, _ length: UInt, _ advice: Int32) -> Bool {
        // SAFETY: the range is part of our own executable's file mapping and held only pages
        // with the file's bytes when pagemap was read; with MADV_DONTNEED nothing can have
        // written them since (read-only mapping, or a single thread), and MADV_PAGEOUT keeps
        // what was written (see the type's comment). Either way they refault from the file.
        madvise(UnsafeMutableRawPointer(bitPattern: start), Int(length), advice) == 0
    }

    private static func threadCount() -> Int {
        guard let status = readTextFile("/proc/self/status") else { return 0 }
        for line in status.split(separator: "\n") where line.hasPrefix("Threads:") {
            return Int(line.dropFirst("Threads:".count).filter(\.isNumber)) ?? 0
        }
        return 0
    }
}

/// The VMM's second `ExecutableText.releaseResidentPages()`, once the guest has settled: the
/// guest's own boot (device probing, config-space reads, the first requests of every device)
/// runs code of the VMM that steady state does not, and it faults back in 64 KiB windows.
/// `poll()` is called from the event loop on every wake-up (at least every 50 ms) and releases
/// once, `delay` after `start()`; until then it costs a clock read per call.
public struct SettledRelease {
    public let delay: Duration
    private let release: () -> UInt
    private var deadline: Int64?
    public private(set) var done = false

    /// `release` is what runs at the deadline (tests count calls instead of dropping pages).
    public init(delay: Duration, release: @escaping () -> UInt = { ExecutableText.releaseResidentPages() }) {
        self.delay = delay
        self.release = release
    }

    public mutating func start() { deadline = MonotonicClock.deadline(after: delay) }

    /// Releases when the deadline has passed; returns the bytes released (0 otherwise).
    @discardableResult
    public mutating func poll() -> UInt {
        guard !done, let deadline, MonotonicClock.now >= deadline else { return 0 }
        done = true
        return release()
    }
}
