#if canImport(Glibc)
import Glibc
#endif
import Sys

/// Resident memory of a process outside its guest RAM, from /proc/PID/smaps: the sums of the
/// `Rss:`, `Pss:` and `Anonymous:` lines of every mapping except those at least `guestMemory`
/// bytes large (guest RAM is one anonymous mapping of that size, in kvmrun and in QEMU alike).
/// `resident` counts file-backed pages too (executable and library text, shared between all
/// processes using them); `proportional` (PSS) divides each page by the number of processes
/// mapping it, which is what many VMMs side by side cost each; `anonymous` is memory this one
/// VMM process alone costs.
public enum ProcessMemory {
    public struct Reading: Sendable, Equatable {
        public var resident: UInt64
        public var proportional: UInt64
        public var anonymous: UInt64

        public init(resident: UInt64, proportional: UInt64, anonymous: UInt64) {
            self.resident = resident
            self.proportional = proportional
            self.anonymous = anonymous
        }
    }

    public static func residentOutsideGuest(pid: pid_t, guestMemory: UInt64) -> Reading? {
        guard let text = readSmall("/proc/\(pid)/smaps") else { return nil }
        return outsideGuest(smaps: text, guestMemory: guestMemory)
    }

    /// The sums over the text of an smaps file (see the type's comment).
    public static func outsideGuest(smaps text: String, guestMemory: UInt64) -> Reading {
        var total: UInt64 = 0
        var proportional: UInt64 = 0
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
            } else if line.hasPrefix("Pss:"), !currentIsGuest {
                proportional += kibibytes(line)
            } else if line.hasPrefix("Anonymous:"), !currentIsGuest {
                anonymous += kibibytes(line)
            }
        }
        return Reading(resident: total * 1024, proportional: proportional * 1024, anonymous: anonymous * 1024)
    }

    static func kibibytes(_ line: Substring) -> UInt64 {
        UInt64(String(line.drop { $0 != " " }.filter { $0.isNumber })) ?? 0
    }

    /// Reads a small text file (a /proc file, a console log) whole; nil if it cannot be read.
    public static func readSmall(_ path: String) -> String? { readTextFile(path) }
}
