#if canImport(Glibc)
import Glibc
#endif
import Sys

/// Lets go of the executable's code pages once the VM is set up. Start-up (the Swift runtime,
/// argument parsing, the machine's set-up) touches code spread over the whole 15 MB static
/// executable, and the kernel maps file pages 64 KiB around every fault, so a running VMM kept
/// ~7 MiB of code resident that it never runs again. `MADV_DONTNEED` on the read-only
/// executable mapping drops those page-table entries (the pages stay in the page cache, shared
/// and reclaimable); what the VMM runs afterwards (vCPU loop, devices, event loop) faults back
/// in from the cache. Only the `r-xp` mapping of /proc/self/exe is touched: it is never
/// written, so nothing is lost. Writable or relocated (RELRO) mappings are left alone.
public enum ExecutableText {
    /// The `r-xp` mappings of `executable` in a /proc/PID/maps text, as (start, end).
    public static func codeMappings(maps: String, executable: String) -> [(start: UInt, end: UInt)] {
        var result: [(start: UInt, end: UInt)] = []
        for line in maps.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 6, fields[1] == "r-xp", fields[5...].joined(separator: " ") == executable,
                  let dash = fields[0].firstIndex(of: "-"),
                  let start = UInt(fields[0][..<dash], radix: 16),
                  let end = UInt(fields[0][fields[0].index(after: dash)...], radix: 16), end > start
            else { continue }
            result.append((start, end))
        }
        return result
    }

    /// Drops this process's resident pages of its executable's code mapping; returns the bytes
    /// of address space advised (0 when /proc is unavailable or nothing matched).
    @discardableResult
    public static func releaseResidentPages() -> UInt {
        var buffer = [CChar](repeating: 0, count: 4096)
        let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard count > 0, let maps = readTextFile("/proc/self/maps") else { return 0 }
        let executable = String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        var released: UInt = 0
        for (start, end) in codeMappings(maps: maps, executable: executable) {
            // SAFETY: a read-only, never-written file mapping of our own executable: its pages
            // refault from the file on the next access; no memory is freed under anyone.
            if madvise(UnsafeMutableRawPointer(bitPattern: start), Int(end - start), MADV_DONTNEED) == 0 {
                released += end - start
            }
        }
        return released
    }
}
