#if canImport(Glibc)
import Glibc
#endif
import Sys

/// Unix stream sockets for the control API: the server's listening socket (mode 0600, stale
/// sockets replaced, live ones refused) and the client's connection.
public enum UnixSocket {
    /// `sun_path` holds 108 bytes including the terminating NUL.
    static let maxPathBytes = 107

    /// Fills a `sockaddr_un` for `path` and calls `body` with it as a `sockaddr` pointer; nil
    /// when the path is empty or does not fit.
    static func withAddress<T>(_ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) -> T) -> T? {
        try? withUnixAddress(path, body)
    }

    static func newSocket(_ what: String, nonBlocking: Bool) throws(SystemError) -> FileDescriptor {
        let flags = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | (nonBlocking ? Int32(SOCK_NONBLOCK.rawValue) : 0)
        return FileDescriptor(try sys("socket(AF_UNIX) for \(what)") { socket(AF_UNIX, flags, 0) })
    }

    /// Connects to `path` (blocking). Throws the connect errno (ENOENT, ECONNREFUSED, ...).
    public static func connect(_ path: String) throws(SystemError) -> FileDescriptor {
        let fd = try newSocket(path, nonBlocking: false)
        guard let result = withAddress(path, { address, length in
            sysOnce("connect \(path)") { Glibc.connect(fd.raw, address, length) }
        }) else {
            throw SystemError(call: "connect \(path) (path empty or longer than \(maxPathBytes) bytes)", errno: ENAMETOOLONG)
        }
        if case let .failure(error) = result { throw error }
        return fd
    }

    /// A non-blocking listening socket at `path`, created mode 0600. A socket file nobody listens
    /// on (left by a killed VMM) is replaced; a live one, or any other file, is refused.
    static func listen(_ path: String, option: String) throws(VMMError) -> (fd: FileDescriptor, inode: ino_t) {
        guard !path.isEmpty, path.utf8.count <= maxPathBytes, !path.utf8.contains(0) else {
            throw .config("\(option) \(path): a Unix socket path must be 1 to \(maxPathBytes) bytes")
        }
        var existing = stat()
        if lstat(path, &existing) == 0 {
            guard existing.st_mode & S_IFMT == S_IFSOCK else {
                throw .config("\(option) \(path): the path exists and is not a socket; remove it or choose another path")
            }
            if let probe = try? connect(path) {
                probe.close()
                throw .config("\(option) \(path): another process is serving this socket (is a VM already running with it?)")
            }
            guard unlink(path) == 0 || errno == ENOENT else {
                throw .setup("\(option) \(path): cannot remove the stale socket: \(SystemError(call: "unlink", errno: errno))")
            }
        }
        var bound = false
        do {
            let fd = try newSocket(path, nonBlocking: true)
            // The socket file takes its mode from the umask at bind time: 0600 from the start,
            // with no window in which others could connect.
            let previous = umask(0o177)
            let result = withAddress(path) { address, length in sysOnce("bind \(path)") { bind(fd.raw, address, length) } }
            umask(previous)
            if case let .failure(error)? = result { throw error }
            bound = true
            try sys("listen on \(path)") { Glibc.listen(fd.raw, 16) }
            var info = stat()
            try sys("stat \(path)") { stat(path, &info) }
            return (fd, info.st_ino)
        } catch {
            if bound { unlink(path) }
            throw .setup("\(option) \(path): \(error)")
        }
    }
}
