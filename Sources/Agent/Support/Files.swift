// Small-file helpers over open/read/write: /proc, /sys, cgroup files, /etc/passwd.
#if canImport(Glibc)
import Glibc
#endif
import Sys

public enum Files {
    /// The whole file (at most `limit` bytes), or nil when it cannot be read.
    public static func read(_ path: String, limit: Int = 1 << 20) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var result: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while result.count < limit {
            // SAFETY: reads into the local buffer, at most its size.
            let count = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, min($0.count, limit - result.count)) }
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { return count == 0 ? result : nil }
            result += chunk[0..<count]
        }
        return result
    }

    public static func readText(_ path: String, limit: Int = 1 << 20) -> String? {
        read(path, limit: limit).map { String(decoding: $0, as: UTF8.self) }
    }

    /// Writes `text` to an existing file (a cgroup or /proc file: one write, no truncation
    /// semantics needed). Throws naming the path.
    public static func write(_ text: String, to path: String) throws(SystemError) {
        let fd = try sys("open \(path)") { open(path, O_WRONLY | O_CLOEXEC) }
        defer { close(fd) }
        var bytes = Array(text.utf8)
        // SAFETY: writes the local array.
        let written = try sys("write \(path) (\(text))") { bytes.withUnsafeMutableBytes { Glibc.write(fd, $0.baseAddress, $0.count) } }
        if written != bytes.count { throw SystemError(call: "write \(path) (short write)", errno: EIO) }
    }

    /// Creates (or truncates) a file with `bytes`.
    public static func create(_ path: String, _ bytes: [UInt8], mode: mode_t = 0o644) throws(SystemError) {
        let fd = try sys("create \(path)") { open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode) }
        defer { close(fd) }
        var offset = 0
        while offset < bytes.count {
            // SAFETY: writes within the array's bounds.
            let written = try sys("write \(path)") { bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + offset, $0.count - offset) } }
            offset += written
        }
    }

    public static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    public static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }

    /// mkdir -p.
    public static func makeDirectories(_ path: String, mode: mode_t = 0o755) throws(SystemError) {
        var prefix = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            prefix += "/" + part
            if mkdir(prefix, mode) != 0, errno != EEXIST {
                throw SystemError(call: "mkdir \(prefix)", errno: errno)
            }
        }
    }

    /// Names in a directory (without "." and ".."), or nil when it cannot be opened.
    public static func list(_ path: String) -> [String]? {
        guard let directory = opendir(path) else { return nil }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            // SAFETY: d_name is a NUL-terminated array inside the dirent readdir returned.
            let name = withUnsafePointer(to: &entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: Int(NAME_MAX) + 1) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    /// "key value" lines (cgroup memory.stat, cpu.stat, memory.events) as a dictionary.
    public static func keyValues(_ text: String) -> [String: UInt64] {
        var result: [String: UInt64] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ")
            if parts.count == 2, let value = UInt64(parts[1]) { result[String(parts[0])] = value }
        }
        return result
    }
}
