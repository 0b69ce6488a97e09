#if canImport(Glibc)
import Glibc
#endif

/// Resident memory of a process outside its guest RAM, from /proc/PID/smaps: the sum of the
/// `Rss:` of every mapping except those at least `guestMemory` bytes large (guest RAM is one
/// anonymous mapping of that size, in kvmrun and in QEMU alike).
public enum ProcessMemory {
    public static func residentOutsideGuest(pid: pid_t, guestMemory: UInt64) -> UInt64? {
        guard let text = readSmall("/proc/\(pid)/smaps") else { return nil }
        var total: UInt64 = 0
        var currentIsGuest = false
        for line in text.split(separator: "\n") {
            if let dash = line.firstIndex(of: "-"), line.first?.isHexDigit == true,
               let space = line.firstIndex(of: " "), dash < space,
               let start = UInt64(line[line.startIndex..<dash], radix: 16),
               let end = UInt64(line[line.index(after: dash)..<space], radix: 16) {
                currentIsGuest = end - start >= guestMemory
            } else if line.hasPrefix("Rss:"), !currentIsGuest {
                let digits = line.dropFirst(4).filter { $0.isNumber }
                total += UInt64(String(digits)) ?? 0
            }
        }
        return total * 1024
    }

    static func readSmall(_ path: String) -> String? {
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
