#if canImport(Glibc)
import Glibc
#endif
import Sys

/// Reads whole input files (kernel, initrd) with errors that name the file and its role.
public enum FileLoader {
    public struct Error: Swift.Error, CustomStringConvertible, Equatable {
        public let role: String
        public let path: String
        public let reason: String
        public var description: String { "\(role) \(path): \(reason)" }
    }

    /// Reads `path` completely. `role` names it in errors ("kernel", "initrd").
    public static func read(_ path: String, role: String, limit: UInt64 = 1 << 32) throws(Error) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            let code = errno
            let reason: String
            switch code {
            case ENOENT: reason = "no such file"
            case EACCES, EPERM: reason = "permission denied"
            default: reason = SystemError(call: "open", errno: code).description
            }
            throw Error(role: role, path: path, reason: reason)
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
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
        // Read straight into uninitialized storage: no zero-fill pass over a 20 MiB vmlinux.
        var failure: Int32 = 0
        var offset = 0
        let bytes = [UInt8](unsafeUninitializedCapacity: Int(size)) { buffer, initialized in
            while offset < buffer.count {
                // SAFETY: reads into the remaining [offset, count) bytes of the new array.
                let count = Glibc.read(fd, buffer.baseAddress!.advanced(by: offset), buffer.count - offset)
                if count < 0 {
                    if errno == EINTR { continue }
                    failure = errno
                    break
                }
                if count == 0 { break }
                offset += count
            }
            initialized = offset
        }
        if failure != 0 {
            throw Error(role: role, path: path, reason: SystemError(call: "read", errno: failure).description)
        }
        guard offset == Int(size) else {
            throw Error(role: role, path: path, reason: "file shrank while being read")
        }
        return bytes
    }
}
