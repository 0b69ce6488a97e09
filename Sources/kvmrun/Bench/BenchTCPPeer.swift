#if canImport(Glibc)
import Glibc
#endif

/// The host end of the TCP part of `kvmrun bench io`: on `address`, port `sinkPort` reads each
/// connection to EOF and then closes it (the guest times guest → host), port `sourcePort` sends
/// `bytes` to each connection and closes it (the guest times host → guest). Runs on its own
/// thread for the whole benchmark; blocking I/O with timeouts so a dead guest cannot wedge it.
final class BenchTCPPeer {
    let sinkPort: UInt16
    let sourcePort: UInt16
    let bytes: Int
    private let sink: Int32
    private let source: Int32
    private var thread = pthread_t()

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    init(address: String, sinkPort: UInt16, sourcePort: UInt16, bytes: Int) throws {
        self.sinkPort = sinkPort
        self.sourcePort = sourcePort
        self.bytes = bytes
        sink = try Self.listen(address: address, port: sinkPort)
        do {
            source = try Self.listen(address: address, port: sourcePort)
        } catch {
            close(sink)
            throw error
        }
    }

    deinit {
        close(sink)
        close(source)
    }

    private static func listen(address: String, port: UInt16) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "bench io: socket: errno \(errno)") }
        var one: Int32 = 1
        // SAFETY: passes a pointer to a local Int32 and its size.
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var socketAddress = sockaddr_in()
        socketAddress.sin_family = sa_family_t(AF_INET)
        socketAddress.sin_port = port.bigEndian
        guard inet_pton(AF_INET, address, &socketAddress.sin_addr) == 1 else {
            close(fd)
            throw Failure(description: "bench io: '\(address)' is not an IPv4 address")
        }
        // SAFETY: sockaddr_in is layout-compatible with the sockaddr prefix bind reads; the
        // length passed is sockaddr_in's size.
        let bound = withUnsafePointer(to: &socketAddress) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, Glibc.listen(fd, 8) == 0 else {
            let code = errno
            close(fd)
            throw Failure(description: "bench io: cannot listen on \(address):\(port): \(String(cString: strerror(code)))")
        }
        return fd
    }

    /// Starts serving connections until the process exits.
    func start() throws {
        let box = Unmanaged.passRetained(self)
        let result = pthread_create(&thread, nil, { argument in
            // SAFETY: `argument` is the retained self passed below; it stays alive for the process.
            let peer = Unmanaged<BenchTCPPeer>.fromOpaque(argument!).takeUnretainedValue()
            peer.serve()
            return nil
        }, box.toOpaque())
        guard result == 0 else {
            box.release()
            throw Failure(description: "bench io: pthread_create returned \(result)")
        }
        pthread_detach(thread)
    }

    private func serve() {
        var buffer = [UInt8](repeating: 0x5A, count: 1 << 20)
        while true {
            var fds = [pollfd(fd: sink, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: source, events: Int16(POLLIN), revents: 0)]
            // SAFETY: `fds` holds the two entries announced.
            guard poll(&fds, 2, -1) > 0 else { continue }
            if fds[0].revents != 0, let connection = accept(sink) {
                // SAFETY: reads into `buffer`, whose count bounds the length.
                while buffer.withUnsafeMutableBytes({ read(connection, $0.baseAddress, $0.count) }) > 0 {}
                close(connection)
            }
            if fds[1].revents != 0, let connection = accept(source) {
                var left = bytes
                while left > 0 {
                    let count = min(left, buffer.count)
                    // SAFETY: writes at most `buffer.count` bytes from `buffer`.
                    let written = buffer.withUnsafeBytes { write(connection, $0.baseAddress, count) }
                    guard written > 0 else { break }
                    left -= written
                }
                close(connection)
            }
        }
    }

    private func accept(_ listener: Int32) -> Int32? {
        let connection = Glibc.accept(listener, nil, nil)
        guard connection >= 0 else { return nil }
        // Not inherited by the VMMs spawned next: the guest waits for this connection's close.
        _ = fcntl(connection, F_SETFD, FD_CLOEXEC)
        // A guest that dies mid-transfer must not wedge the peer: 60 s timeouts both ways.
        var limit = timeval(tv_sec: 60, tv_usec: 0)
        // SAFETY: passes a pointer to a local timeval and its size.
        _ = setsockopt(connection, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        _ = setsockopt(connection, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        return connection
    }
}
