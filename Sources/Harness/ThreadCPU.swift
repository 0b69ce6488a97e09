#if canImport(Glibc)
import Glibc
#endif

/// CPU time of each thread of a process, from /proc/PID/task/TID: `schedstat`'s first field
/// (nanoseconds on the CPU, user + system, and for a vCPU thread also guest mode), or `stat`'s
/// utime + stime in clock ticks where schedstat is missing. With the thread's name (`comm`),
/// so a benchmark can tell vCPU threads from the VMM's own.
public enum ThreadCPU {
    public struct Thread: Sendable, Equatable {
        public var name: String
        public var nanoseconds: UInt64
    }

    public static func threads(pid: pid_t) -> [Thread] {
        guard let directory = opendir("/proc/\(pid)/task") else { return [] }
        defer { closedir(directory) }
        var result: [Thread] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard let tid = Int32(name) else { continue }
            let base = "/proc/\(pid)/task/\(tid)"
            let comm = ProcessMemory.readSmall(base + "/comm").map { String($0.prefix { $0 != "\n" }) } ?? "?"
            if let text = ProcessMemory.readSmall(base + "/schedstat"), let value = schedstatNanoseconds(text) {
                result.append(Thread(name: comm, nanoseconds: value))
            } else if let text = ProcessMemory.readSmall(base + "/stat"), let value = statNanoseconds(text) {
                result.append(Thread(name: comm, nanoseconds: value))
            }
        }
        return result
    }

    /// The first field of a schedstat line ("run-ns wait-ns timeslices").
    public static func schedstatNanoseconds(_ text: String) -> UInt64? {
        text.split(separator: " ").first.flatMap { UInt64($0.filter(\.isNumber)) }
    }

    /// utime + stime (fields 14 and 15) of a /proc stat line, in nanoseconds. The command name
    /// in parentheses may hold spaces, so fields are counted after its closing parenthesis.
    public static func statNanoseconds(_ text: String) -> UInt64? {
        guard let close = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        // fields[0] is field 3 (state): utime is field 14, stime field 15.
        guard fields.count > 12, let user = UInt64(fields[11]), let system = UInt64(fields[12]) else { return nil }
        let ticks = UInt64(max(1, sysconf(Int32(_SC_CLK_TCK))))
        return (user + system) * 1_000_000_000 / ticks
    }
}
