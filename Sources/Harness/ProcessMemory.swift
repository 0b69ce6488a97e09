#if canImport(Glibc)
import Glibc
#endif

/// Resident memory of a process outside its guest RAM, from /proc/PID/smaps: the sums of the
/// `Rss:` and `Anonymous:` lines of every mapping except those at least `guestMemory` bytes
/// large (guest RAM is one anonymous mapping of that size, in kvmrun and in QEMU alike).
/// `resident` counts file-backed pages too (executable and library text, shared between all
/// processes using them); `anonymous` is memory this one VMM process alone costs.
public enum ProcessMemory {
    public struct Reading: Sendable {
        public var resident: UInt64
        public var anonymous: UInt64
    }

    public static func residentOutsideGuest(pid: pid_t, guestMemory: UInt64) -> Reading? {
        guard let text = readSmall("/proc/\(pid)/smaps") else { return nil }
        var total: UInt64 = 0
        var anonymous: UInt64 = 0
        var currentIsGuest = false
        for line in text.split(separator: "\n") {
            if let dash = line.firstIndex(of: "-"), line.first?.isHexDigit == true,
               let space = line.firstIndex(of: " "), dash < space,
               let start = UInt64(line[line.startIndex..<dash], radix: 16),
               let end = UInt64(line[line.index(after: dash)..<space], radix: 16) {
                currentIsGuest = end - start >= guestMemory
            } else if line.hasPrefix("Rss:"), !currentIsGuest {
                total += kibibytes(line)
            } else if line.hasPrefix("Anonymous:"), !currentIsGuest {
                anonymous += kibibytes(line)
            }
        }
        return Reading(resident: total * 1024, anonymous: anonymous * 1024)
    }

    static func kibibytes(_ line: Substring) -> UInt64 {
        UInt64(String(line.drop { $0 != " " }.filter { $0.isNumber })) ?? 0
    }

    /// Reads a small text file (a /proc file, a console log) whole; nil if it cannot be read.
    public static func readSmall(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = read(fd, &chunk, chunk.count)
            if count <= 0 { break }
            bytes += chunk[0..<count]
        }
        return bytes.isEmpty ? nil : String(decoding: bytes, as: UTF8.self)
    }
}
