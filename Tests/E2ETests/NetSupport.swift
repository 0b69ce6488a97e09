#if canImport(Glibc)
import Glibc
#endif
import Harness
import Testing

/// Host-side helpers for the virtio-net tests: `ip` commands, TCP sockets with bounded waits
/// that keep the guest's console pipe drained, and sha256 through the host's sha256sum.
enum Net {
    static var ipTool: String { access("/usr/sbin/ip", X_OK) == 0 ? "/usr/sbin/ip" : "/sbin/ip" }

    /// Runs a host command to completion; returns its status and stdout.
    @discardableResult
    static func command(_ executable: String, _ arguments: [String]) throws -> (status: Int32, stdout: String) {
        let child = try ChildProcess(executable: executable, arguments: arguments)
        let status = child.waitForExit(timeoutMilliseconds: 30_000) ?? -1
        child.drain(timeoutMilliseconds: 1000)
        let stderr = String(decoding: child.stderrText, as: UTF8.self)
        if status != 0 { Issue.record("\(executable) \(arguments) exited \(status): \(stderr)") }
        return (status, String(decoding: child.stdoutText, as: UTF8.self))
    }

    static func ip(_ arguments: String) throws {
        try command(ipTool, arguments.split(separator: " ").map(String.init))
    }

    static func exists(_ interface: String) -> Bool { access("/sys/class/net/\(interface)", F_OK) == 0 }

    /// Monotonic seconds.
    static func seconds() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
    }

    /// `count` bytes of a fixed pseudo-random sequence (no runs a link could compress).
    static func payload(_ count: Int, seed: UInt32) -> [UInt8] {
        var state = seed
        return (0..<count).map { _ in
            state = state &* 1_664_525 &+ 1_013_904_223
            return UInt8(truncatingIfNeeded: state >> 24)
        }
    }

    static func sha256(_ bytes: [UInt8]) throws -> String {
        let path = E2E.temporaryPath("net-payload")
        E2E.writeFile(path, bytes)
        defer { unlink(path) }
        let output = try command("/usr/bin/sha256sum", [path]).stdout
        return String(output.prefix(while: { $0 != " " }))
    }

    /// An IPv4 socket address.
    static func address(_ ip: String, _ port: UInt16) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        inet_pton(AF_INET, ip, &address.sin_addr)
        return address
    }

    /// A listening TCP socket on `ip:port`.
    static func listen(_ ip: String, _ port: UInt16) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = address(ip, port)
        // SAFETY: passes the local sockaddr_in with its size.
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, Glibc.listen(fd, 4) == 0 else {
            let message = String(cString: strerror(errno))
            close(fd)
            throw NetTestError("bind/listen \(ip):\(port): \(message)")
        }
        return fd
    }

    /// Waits until `fd` is ready for `events` while draining the child's output; false when the
    /// child exited first or `seconds` passed.
    static func wait(_ fd: Int32, events: Int16 = Int16(POLLIN), seconds: Int, child: ChildProcess) -> Bool {
        for _ in 0..<(seconds * 10) {
            var entry = pollfd(fd: fd, events: events, revents: 0)
            if poll(&entry, 1, 50) > 0 { return true }
            if child.waitForExit(timeoutMilliseconds: 50) != nil { return false }
        }
        return false
    }

    /// Accepts one connection on `listener`.
    static func accept(_ listener: Int32, seconds: Int, child: ChildProcess) throws -> Int32 {
        guard wait(listener, seconds: seconds, child: child) else {
            throw NetTestError("no connection from the guest within \(seconds) s")
        }
        let fd = Glibc.accept(listener, nil, nil)
        guard fd >= 0 else { throw NetTestError("accept: \(String(cString: strerror(errno)))") }
        return fd
    }

    /// Connects to `ip:port`, retrying while it is refused (the guest is not listening yet).
    static func connect(_ ip: String, _ port: UInt16, attempts: Int, child: ChildProcess) throws -> Int32 {
        for _ in 0..<attempts {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            var address = address(ip, port)
            // SAFETY: passes the local sockaddr_in with its size.
            let result = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            if result == 0 { return fd }
            close(fd)
            if child.waitForExit(timeoutMilliseconds: 300) != nil { break }
        }
        throw NetTestError("cannot connect to the guest at \(ip):\(port)")
    }

    /// Sends all of `bytes`, then closes the socket.
    static func sendAll(_ fd: Int32, _ bytes: [UInt8], seconds: Int, child: ChildProcess) throws {
        defer { close(fd) }
        var offset = 0
        while offset < bytes.count {
            guard wait(fd, events: Int16(POLLOUT), seconds: seconds, child: child) else {
                throw NetTestError("sending stalled at \(offset) of \(bytes.count) bytes")
            }
            // SAFETY: sends the remaining part of the array.
            let sent = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_DONTWAIT)) }
            if sent < 0 {
                if errno == EAGAIN || errno == EINTR { continue }
                throw NetTestError("send: \(String(cString: strerror(errno)))")
            }
            offset += sent
        }
    }

    /// Reads until the peer closes, then closes the socket.
    static func receiveAll(_ fd: Int32, seconds: Int, child: ChildProcess) throws -> [UInt8] {
        defer { close(fd) }
        var result: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            guard wait(fd, seconds: seconds, child: child) else {
                throw NetTestError("receiving stalled after \(result.count) bytes")
            }
            let count = recv(fd, &chunk, chunk.count, Int32(MSG_DONTWAIT))
            if count == 0 { return result }
            if count < 0 {
                if errno == EAGAIN || errno == EINTR { continue }
                throw NetTestError("recv: \(String(cString: strerror(errno)))")
            }
            result += chunk[0..<count]
        }
    }
}

struct NetTestError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
