#if canImport(Glibc)
import Glibc
#endif
import Sys
import Testing
@testable import VMM

/// The API server on a real Unix socket and a real event loop, with the VM played by a double.
@Suite("Control API: socket server", .serialized)
struct APIServerTests {
    static func socketPath(_ name: String) -> String { "/tmp/kvmrun-unit-\(getpid())-\(name).sock" }

    /// A client that sent `bytes` and collects the reply until the server closes.
    final class RawClient {
        let fd: FileDescriptor
        var reply: [UInt8] = []
        var done = false

        init(_ path: String, _ bytes: [UInt8]) throws {
            fd = try UnixSocket.connect(path)
            // SAFETY: writes the local array.
            let sent = bytes.withUnsafeBytes { send(fd.raw, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            #expect(sent == bytes.count)
            _ = fcntl(fd.raw, F_SETFL, O_NONBLOCK)
        }

        func poll() {
            var chunk = [UInt8](repeating: 0, count: 4096)
            while !done {
                // SAFETY: reads at most chunk.count bytes into the local buffer.
                let count = read(fd.raw, &chunk, chunk.count)
                if count > 0 { reply += chunk[0..<count]; continue }
                if count == 0 || (errno != EAGAIN && errno != EINTR) { done = true }
                return
            }
        }

        var status: Int? { HTTPResponseParser.parse(reply)?.status }
    }

    /// Runs `loop` until `finished` holds (at most 2000 rounds of 5 ms, so a bug cannot hang the suite).
    func run(_ loop: EventLoop, until finished: @escaping () -> Bool) throws {
        var rounds = 0
        try loop.run(timeoutMilliseconds: 5) {
            rounds += 1
            if finished() || rounds > 2000 { loop.stop() }
        }
    }

    @Test("a 0600 socket answers good and malformed requests, one connection each, and is removed on close")
    func serves() throws {
        let path = APIServerTests.socketPath("serve")
        let loop = try EventLoop()
        let control = ControlDouble()
        let server = try APIServer(path: path, control: control, loop: loop, logger: .discarding)
        var info = stat()
        #expect(stat(path, &info) == 0)
        #expect(info.st_mode & S_IFMT == S_IFSOCK)
        #expect(info.st_mode & 0o777 == 0o600)

        let oversize = Array("PATCH /vm HTTP/1.1\r\nContent-Length: 70000\r\n\r\n".utf8) + [UInt8](repeating: 0x20, count: 70000)
        let exchanges: [([UInt8], Int)] = [
            (Array("GET /vm HTTP/1.1\r\nHost: x\r\n\r\n".utf8), 200),
            (Array("GARBAGE\r\n\r\n".utf8), 400),
            (Array("PATCH /vm HTTP/1.1\r\nContent-Length: 9\r\n\r\n{\"state\":".utf8), 400),
            (Array("GET /nowhere HTTP/1.1\r\n\r\n".utf8), 404),
            (Array("DELETE /vm HTTP/1.1\r\n\r\n".utf8), 405),
            (oversize, 413),
            ([UInt8](repeating: 0x41, count: 9000), 431),
        ]
        var clients = try exchanges.map { try RawClient(path, $0.0) }
        // A client that shuts down its sending side after the request still gets the reply.
        let halfClosed = try RawClient(path, Array("GET /metrics HTTP/1.0\r\n\r\n".utf8))
        shutdown(halfClosed.fd.raw, Int32(SHUT_WR))
        clients.append(halfClosed)
        // One that leaves mid-request is dropped without harm.
        let gone = try RawClient(path, Array("GET /vm HTTP/1.1\r\nHo".utf8))
        gone.fd.close()
        try run(loop) {
            clients.forEach { $0.poll() }
            return clients.allSatisfy(\.done)
        }
        #expect(halfClosed.status == 200)
        for (client, (_, status)) in zip(clients, exchanges) {
            #expect(client.status == status, "reply: \(String(decoding: client.reply.prefix(200), as: UTF8.self))")
        }
        #expect(control.calls.isEmpty)
        server.close()
        #expect(access(path, F_OK) != 0, "the socket file is still there after close")
    }

    @Test("a pause is answered only once the vCPUs have parked")
    func pauseWaits() throws {
        let path = APIServerTests.socketPath("pause")
        let loop = try EventLoop()
        let control = ControlDouble()
        let server = try APIServer(path: path, control: control, loop: loop, logger: .discarding)
        defer { server.close() }
        let body = #"{"state":"Paused"}"#
        let pause = try RawClient(path, Array("PATCH /vm HTTP/1.1\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)".utf8))
        let info = try RawClient(path, Array("GET /vm HTTP/1.1\r\n\r\n".utf8))
        // First the info reply arrives while the pause still waits; then the vCPUs park and the
        // eventfd wakes the server, which answers the pause. (One run: a stopped loop stays stopped.)
        var pausePendingAfterInfo = false
        var infoReply = ""
        try run(loop) {
            [pause, info].forEach { $0.poll() }
            if info.done && !control.parked {
                pausePendingAfterInfo = !pause.done && pause.reply.isEmpty
                infoReply = String(decoding: info.reply, as: UTF8.self)
                control.parked = true
                var one: UInt64 = 1
                // SAFETY: writes the local 8-byte eventfd increment.
                _ = write(server.parkedEvent.raw, &one, 8)
            }
            return pause.done
        }
        #expect(info.status == 200)
        #expect(infoReply.contains("\"state\":\"Paused\""))
        #expect(pausePendingAfterInfo)
        #expect(pause.status == 204)
        #expect(control.calls == ["pause"])
    }

    @Test("a live socket is refused, a stale one replaced, another file left alone")
    func existingPaths() throws {
        let path = APIServerTests.socketPath("exists")
        let loop = try EventLoop()
        let first = try APIServer(path: path, control: ControlDouble(), loop: loop, logger: .discarding)
        #expect(throws: VMMError.self) { try APIServer(path: path, control: ControlDouble(), loop: loop, logger: .discarding) }
        first.close()

        // A stale socket: bound, then its socket closed without removing the file.
        let stale = try UnixSocket.newSocket(path, nonBlocking: false)
        _ = UnixSocket.withAddress(path) { bind(stale.raw, $0, $1) }
        stale.close()
        #expect(access(path, F_OK) == 0)
        let second = try APIServer(path: path, control: ControlDouble(), loop: loop, logger: .discarding)
        second.close()

        let file = open(path, O_CREAT | O_WRONLY, 0o644)
        close(file)
        defer { unlink(path) }
        #expect(throws: VMMError.self) { try APIServer(path: path, control: ControlDouble(), loop: loop, logger: .discarding) }
        #expect(access(path, F_OK) == 0, "a regular file in the way was removed")
        #expect(throws: VMMError.self) {
            try APIServer(path: "/tmp/" + String(repeating: "x", count: 120), control: ControlDouble(), loop: loop, logger: .discarding)
        }
    }
}
