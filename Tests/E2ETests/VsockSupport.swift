#if canImport(Glibc)
import Glibc
#endif

/// Host-side Unix sockets for the vsock end-to-end tests: the test process plays the host
/// applications (a client of the VM's socket, servers on `<uds>_<port>`). Blocking I/O with
/// socket timeouts, so a broken VMM fails a test instead of hanging it.
enum HostUnix {
    /// The guest tool's pattern: byte i of seed s is (i * 131 + s * 17 + (i >> 9)) & 0xff. It
    /// repeats every 128 KiB (131072 * 131 and 131072 >> 9 are multiples of 256), so one period
    /// is built and streams are sent and checked against it with memcmp: the test process (a
    /// debug build, under emulation in the nested host) must not touch megabytes byte by byte.
    static let period = 131072

    static func pattern(seed: Int) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: period) { buffer, count in
            for index in 0..<period { buffer[index] = UInt8(truncatingIfNeeded: index &* 131 &+ seed &* 17 &+ (index >> 9)) }
            count = period
        }
    }

    /// Sends `count` bytes of the pattern of `seed`.
    static func sendPattern(_ fd: Int32, count: Int, seed: Int) -> Bool {
        let cycle = pattern(seed: seed)
        var sent = 0
        while sent < count {
            let offset = sent % period
            let length = min(count - sent, period - offset)
            // SAFETY: [offset, offset + length) lies inside the period buffer.
            let written = cycle.withUnsafeBytes { send(fd, $0.baseAddress! + offset, length, Int32(MSG_NOSIGNAL)) }
            if written < 0 && errno == EINTR { continue }
            guard written > 0 else { return false }
            sent += written
        }
        return true
    }

    /// Reads to end of stream, checking the bytes against the pattern of `seed`. Returns how
    /// many bytes came and the offset of the first wrong one, if any.
    static func receivePattern(_ fd: Int32, seed: Int) -> (count: Int, mismatch: Int?) {
        let cycle = pattern(seed: seed)
        var buffer = [UInt8](repeating: 0, count: 65536)
        var total = 0
        var mismatch: Int?
        while true {
            // SAFETY: reads at most buffer.count bytes into the local buffer.
            let count = read(fd, &buffer, buffer.count)
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { return (total, mismatch) }
            var checked = 0
            while checked < count && mismatch == nil {
                let offset = (total + checked) % period
                let length = min(count - checked, period - offset)
                // SAFETY: both ranges lie inside their arrays (length fits the chunk and the period).
                let equal = buffer.withUnsafeBytes { chunk in
                    cycle.withUnsafeBytes { memcmp(chunk.baseAddress! + checked, $0.baseAddress! + offset, length) == 0 }
                }
                if !equal {
                    mismatch = (0..<length).first { buffer[checked + $0] != cycle[offset + $0] }.map { total + checked + $0 }
                }
                checked += length
            }
            total += count
        }
    }

    static func withAddress<T>(_ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) -> T) -> T {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8.prefix(MemoryLayout.size(ofValue: address.sun_path) - 1))
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            // SAFETY: at most sun_path's size - 1 bytes are copied; the rest stays zero.
            raw.copyBytes(from: bytes)
        }
        return withUnsafePointer(to: &address) { pointer in
            // SAFETY: sockaddr_un begins with the generic sockaddr fields.
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
    }

    static func listen(_ path: String) -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard withAddress(path, { bind(fd, $0, $1) }) == 0, Glibc.listen(fd, 64) == 0 else { return -1 }
        return fd
    }

    /// Connects to `path`; -1 on failure.
    static func connect(_ path: String) -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard withAddress(path, { Glibc.connect(fd, $0, $1) }) == 0 else { close(fd); return -1 }
        setTimeouts(fd, seconds: 120)
        return fd
    }

    /// Accepts one connection within `seconds`; -1 on timeout.
    static func accept(_ listener: Int32, seconds: Int32) -> Int32 {
        var entry = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
        guard poll(&entry, 1, seconds * 1000) == 1 else { return -1 }
        let fd = Glibc.accept(listener, nil, nil)
        if fd >= 0 { setTimeouts(fd, seconds: 120) }
        return fd
    }

    static func setTimeouts(_ fd: Int32, seconds: Int) {
        var limit = timeval(tv_sec: seconds, tv_usec: 0)
        // SAFETY: passes the local timeval with its exact size.
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
    }

    static func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            // SAFETY: sends from inside the array, offset < count.
            let count = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { return false }
            offset += count
        }
        return true
    }

    /// Reads until end of stream (or an error/timeout, then what arrived so far).
    static func readToEnd(_ fd: Int32) -> [UInt8] {
        var result: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            // SAFETY: reads at most buffer.count bytes into the local buffer.
            let count = read(fd, &buffer, buffer.count)
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { return result }
            result += buffer[0..<count]
        }
    }

    /// Reads one line (without the newline) byte by byte, so nothing after it is consumed.
    static func readLine(_ fd: Int32) -> String? {
        var line: [UInt8] = []
        var byte: UInt8 = 0
        while line.count < 256 {
            // SAFETY: reads one byte into the local.
            let count = read(fd, &byte, 1)
            if count < 0 && errno == EINTR { continue }
            guard count == 1 else { return nil }
            if byte == UInt8(ascii: "\n") { return String(decoding: line, as: UTF8.self) }
            line.append(byte)
        }
        return nil
    }
}
