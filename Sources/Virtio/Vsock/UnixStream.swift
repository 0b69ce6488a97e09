#if canImport(Glibc)
import Glibc
#endif
import Sys

/// Non-blocking Unix stream sockets for the vsock host side: the VM's listening socket, the
/// streams it accepts and the ones it opens to `<uds>_<port>`.
enum UnixStream {
    enum ReadResult: Equatable {
        case data([UInt8])
        case wouldBlock
        case endOfStream
        case failed(Int32)
    }

    enum WriteResult: Equatable {
        case wrote(Int)
        case wouldBlock
        case failed(Int32)
    }

    /// Calls `body` with a `sockaddr_un` for `path`; throws when the path does not fit.
    static func withAddress<T>(_ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) -> T) throws(SystemError) -> T {
        try withUnixAddress(path, body)
    }

    static func newSocket(_ what: String) throws(SystemError) -> FileDescriptor {
        let type = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        return FileDescriptor(try sys("socket(AF_UNIX) for \(what)") { socket(AF_UNIX, type, 0) })
    }

    /// Listens on `path` (mode 0600). A stale socket file (nobody accepting) is replaced; a live
    /// socket or any other file at `path` is an error.
    static func listen(path: String) throws(SystemError) -> FileDescriptor {
        var info = stat()
        if lstat(path, &info) == 0 {
            guard info.st_mode & S_IFMT == S_IFSOCK else {
                throw SystemError(call: "listen on \(path): the path exists and is not a socket", errno: EEXIST)
            }
            let probe = try newSocket("probing \(path)")
            let live = try withAddress(path) { Glibc.connect(probe.raw, $0, $1) } == 0 || errno == EAGAIN
            guard !live else {
                throw SystemError(call: "listen on \(path): another process is listening there", errno: EADDRINUSE)
            }
            try sys("unlink stale socket \(path)") { unlink(path) }
        }
        let socket = try newSocket(path)
        let previous = umask(0o177)
        let bound = try withAddress(path) { bind(socket.raw, $0, $1) }
        let bindErrno = errno
        umask(previous)
        guard bound == 0 else { throw SystemError(call: "bind \(path)", errno: bindErrno) }
        try sys("chmod 0600 \(path)") { chmod(path, 0o600) }
        try sys("listen on \(path)") { Glibc.listen(socket.raw, 128) }
        return socket
    }

    /// Connects to `path` without blocking: a full backlog fails (EAGAIN) instead of waiting.
    static func connect(path: String) throws(SystemError) -> FileDescriptor {
        let socket = try newSocket(path)
        let result = try withAddress(path) { Glibc.connect(socket.raw, $0, $1) }
        guard result == 0 else { throw SystemError(call: "connect \(path)", errno: errno) }
        return socket
    }

    /// The next pending connection, or nil when there is none (or accept failed).
    static func accept(_ listener: FileDescriptor) -> FileDescriptor? {
        while true {
            let fd = Glibc.accept(listener.raw, nil, nil)
            if fd >= 0 {
                let stream = FileDescriptor(fd)
                guard fcntl(fd, F_SETFD, FD_CLOEXEC) == 0, fcntl(fd, F_SETFL, O_NONBLOCK) == 0 else { continue }
                return stream
            }
            if errno == EINTR || errno == ECONNABORTED { continue }
            return nil
        }
    }

    /// Reads at most `limit` bytes.
    static func read(_ fd: FileDescriptor, limit: Int) -> ReadResult {
        var buffer = [UInt8](repeating: 0, count: limit)
        while true {
            // SAFETY: reads at most buffer.count bytes into the local buffer.
            let count = buffer.withUnsafeMutableBytes { Glibc.read(fd.raw, $0.baseAddress, $0.count) }
            if count > 0 {
                buffer.removeSubrange(count...)
                return .data(buffer)
            }
            if count == 0 { return .endOfStream }
            switch errno {
            case EINTR: continue
            case EAGAIN: return .wouldBlock
            case let code: return .failed(code)
            }
        }
    }

    /// Writes what the socket takes of `bytes` (no SIGPIPE: a closed peer is `.failed(EPIPE)`).
    static func write(_ fd: FileDescriptor, _ bytes: ArraySlice<UInt8>) -> WriteResult {
        while true {
            // SAFETY: sends at most bytes.count bytes from the slice's own storage.
            let count = bytes.withUnsafeBytes { send(fd.raw, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if count >= 0 { return .wrote(count) }
            switch errno {
            case EINTR: continue
            case EAGAIN: return .wouldBlock
            case let code: return .failed(code)
            }
        }
    }
}
