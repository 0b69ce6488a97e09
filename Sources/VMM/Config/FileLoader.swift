#if canImport(Glibc)
import Glibc
#endif
import Sys

/// Opens input files (kernel, initrd) with errors that name the file and its role.
public enum FileLoader {
    public struct Error: Swift.Error, CustomStringConvertible, Equatable {
        public let role: String
        public let path: String
        public let reason: String
        public var description: String { "\(role) \(path): \(reason)" }
    }

    /// Opens `path` for reading and checks that it is a regular, non-empty file of at most
    /// `limit` bytes. Returns the descriptor and the size. `role` names it in errors.
    public static func open(_ path: String, role: String, limit: UInt64 = 1 << 32) throws(Error) -> (FileDescriptor, UInt64) {
        let raw = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        if raw < 0 {
            let code = errno
            let reason: String
            switch code {
            case ENOENT: reason = "no such file"
            case EACCES, EPERM: reason = "permission denied"
            default: reason = SystemError(call: "open", errno: code).description
            }
            throw Error(role: role, path: path, reason: reason)
        }
        let fd = FileDescriptor(raw)
        var info = stat()
        guard fstat(raw, &info) == 0 else {
            throw Error(role: role, path: path, reason: SystemError(call: "fstat", errno: errno).description)
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw Error(role: role, path: path, reason: "not a regular file")
        }
        let size = UInt64(info.st_size)
        guard size > 0 else { throw Error(role: role, path: path, reason: "file is empty") }
        guard size <= limit else {
            throw Error(role: role, path: path, reason: "file is \(size >> 20) MiB, larger than the \(limit >> 20) MiB limit")
        }
        return (fd, size)
    }
}
