#if canImport(Glibc)
import Glibc
#endif

/// Calls `body` with a `sockaddr_un` for `path`; throws ENAMETOOLONG when the path is empty,
/// holds a NUL or does not fit `sun_path` with its terminating zero.
public func withUnixAddress<T>(_ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) -> T) throws(SystemError) -> T {
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    let bytes = Array(path.utf8)
    let capacity = MemoryLayout.size(ofValue: address.sun_path)
    guard !bytes.isEmpty, bytes.count < capacity, !bytes.contains(0) else {
        throw SystemError(call: "unix socket path '\(path)' (at most \(capacity - 1) bytes)", errno: ENAMETOOLONG)
    }
    withUnsafeMutableBytes(of: &address.sun_path) { raw in
        // SAFETY: bytes.count < capacity, so the copy and the terminating zero stay inside sun_path.
        raw.copyBytes(from: bytes)
        raw[bytes.count] = 0
    }
    return withUnsafePointer(to: &address) { pointer in
        // SAFETY: sockaddr_un starts with the sockaddr fields; the length covers the whole struct.
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            body($0, socklen_t(MemoryLayout<sockaddr_un>.size))
        }
    }
}

/// Blocking stream-socket I/O for the agent protocol's two ends.
public enum StreamSocket {
    /// A blocking AF_UNIX stream socket connected to `path`.
    public static func connectUnix(_ path: String) throws(SystemError) -> FileDescriptor {
        let fd = FileDescriptor(try sys("socket(AF_UNIX) for \(path)") {
            socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        })
        _ = try withUnixAddress(path) { address, length in sysOnce("connect \(path)") { connect(fd.raw, address, length) } }.get()
        return fd
    }

    /// Writes all of `bytes`, waiting for room at most until `deadline` (`MonotonicClock`
    /// nanoseconds; nil: no limit). A closed peer is EPIPE, never SIGPIPE; no progress by the
    /// deadline is ETIMEDOUT. `sent` counts the bytes written, also when it throws (a frame cut
    /// short leaves the stream unusable; one not started does not).
    public static func sendAll(_ fd: Int32, _ bytes: [UInt8], deadline: Int64? = nil, sent: inout Int,
                               what: @autoclosure () -> String) throws(SystemError) {
        sent = 0
        while sent < bytes.count {
            let offset = sent
            // SAFETY: sends from inside `bytes`: offset < count, the length is what is left.
            let result = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
            if result >= 0 {
                sent += result
                continue
            }
            let code = errno
            switch code {
            case EINTR:
                continue
            case EAGAIN:
                guard try waitWritable(fd, deadline: deadline) else {
                    throw SystemError(call: "send \(what()) (\(sent) of \(bytes.count) bytes went out before the deadline)", errno: ETIMEDOUT)
                }
            default:
                throw SystemError(call: "send \(what())", errno: code)
            }
        }
    }

    /// `sendAll` without a deadline or a count.
    public static func sendAll(_ fd: Int32, _ bytes: [UInt8], what: @autoclosure () -> String) throws(SystemError) {
        var sent = 0
        try sendAll(fd, bytes, sent: &sent, what: what())
    }

    /// Reads at most `buffer.count` bytes into `buffer` (blocking); 0 at end of stream.
    public static func receive(_ fd: Int32, into buffer: inout [UInt8], what: @autoclosure () -> String) throws(SystemError) -> Int {
        try sys("read \(what())") {
            // SAFETY: reads at most buffer.count bytes into the buffer.
            buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        }
    }

    /// Waits until `fd` is readable (or hung up), at most until `deadline` (`MonotonicClock`
    /// nanoseconds; nil: no limit). Returns false on timeout.
    public static func waitReadable(_ fd: Int32, deadline: Int64?) throws(SystemError) -> Bool {
        try wait(fd, for: Int16(POLLIN), deadline: deadline)
    }

    /// Waits until `fd` has room for writing (or an error), at most until `deadline`.
    public static func waitWritable(_ fd: Int32, deadline: Int64?) throws(SystemError) -> Bool {
        try wait(fd, for: Int16(POLLOUT), deadline: deadline)
    }

    private static func wait(_ fd: Int32, for events: Int16, deadline: Int64?) throws(SystemError) -> Bool {
        while true {
            var timeout: Int32 = -1
            if let deadline {
                let left = deadline - MonotonicClock.now
                guard left > 0 else { return false }
                timeout = Int32(clamping: (left + 999_999) / 1_000_000)
            }
            var entry = pollfd(fd: fd, events: events, revents: 0)
            let ready = try sys("poll") { poll(&entry, 1, timeout) }
            if ready > 0 { return true }
        }
    }
}
