#if canImport(Glibc)
import Glibc
#endif
import FoundationEssentials
import Sys

/// Files written whole or not at all: write a temporary file beside the target, fsync it,
/// rename it over the target, fsync the directory. A crash at any point leaves the old file or
/// the new one, never half of one.
public enum AtomicFile {
    public static func write(_ bytes: [UInt8], to path: String, mode: mode_t = 0o600) throws(RuntimeError) {
        let temporary = path + ".tmp-\(getpid())"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard fd >= 0 else { throw .failed(step: "write \(path)", reason: "open \(temporary): \(errnoText())") }
        var written = 0
        while written < bytes.count {
            // SAFETY: written < bytes.count, so pointer and length stay inside the array.
            let count = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + written, $0.count - written) }
            if count < 0 {
                if errno == EINTR { continue }
                let reason = errnoText()
                close(fd)
                unlink(temporary)
                throw .failed(step: "write \(path)", reason: reason)
            }
            written += count
        }
        if fsync(fd) != 0 {
            let reason = errnoText()
            close(fd)
            unlink(temporary)
            throw .failed(step: "write \(path)", reason: "fsync: \(reason)")
        }
        close(fd)
        guard rename(temporary, path) == 0 else {
            let reason = errnoText()
            unlink(temporary)
            throw .failed(step: "write \(path)", reason: "rename: \(reason)")
        }
        syncDirectory(of: path)
    }

    public static func writeJSON<T: Encodable>(_ value: T, to path: String) throws(RuntimeError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        let data: Data
        do { data = try encoder.encode(value) } catch { throw .failed(step: "encode \(path)", reason: "\(error)") }
        try write(Array(data), to: path)
    }

    public static func readJSON<T: Decodable>(_ type: T.Type, from path: String) throws(RuntimeError) -> T {
        guard let bytes = readBytes(path) else {
            if errno == ENOENT { throw .notFound(path) }
            throw .failed(step: "read \(path)", reason: errnoText())
        }
        do { return try JSONDecoder().decode(T.self, from: Data(bytes)) } catch {
            throw .failed(step: "read \(path)", reason: "not a valid state file: \(error)")
        }
    }

    public static func readBytes(_ path: String) -> [UInt8]? { readFileBytes(path) }

    static func syncDirectory(of path: String) {
        let directory = path.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        let fd = open(directory.isEmpty ? "/" : directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd >= 0 { _ = fsync(fd); close(fd) }
    }
}

func errnoText(_ code: Int32 = errno) -> String {
    String(cString: strerror(code))
}
