#if canImport(Glibc)
import Glibc
#endif
import Devices
import Testing
@testable import VMM

/// The console output when its reader stalls: the vCPU side never blocks, the buffer is
/// bounded, overflow is counted, and what is kept arrives in order.
@Suite("Console output")
struct ConsoleSinkTests {
    /// A pipe: the test reads `reader`, the sink writes `writer`.
    final class Pipe {
        let reader: Int32
        let writer: Int32

        init() {
            var fds: [Int32] = [-1, -1]
            precondition(pipe(&fds) == 0)
            reader = fds[0]
            writer = fds[1]
            _ = fcntl(reader, F_SETFL, O_NONBLOCK)
        }

        deinit {
            close(reader)
            close(writer)
        }

        /// Everything readable now.
        func readAvailable() -> [UInt8] {
            var result: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 65536)
            while true {
                // SAFETY: reads at most chunk.count bytes into the local buffer.
                let count = chunk.withUnsafeMutableBytes { read(reader, $0.baseAddress, $0.count) }
                if count <= 0 { return result }
                result += chunk[0..<count]
            }
        }
    }

    static func byte(_ index: Int) -> UInt8 { UInt8(truncatingIfNeeded: index &* 31 &+ index / 251) }

    @Test("a pipe nobody reads: writes return at once, the buffer holds its capacity, the rest is dropped and counted")
    func stalledReader() {
        let pipe = Pipe()
        let sink = BufferedConsoleSink(fd: pipe.writer, capacity: 4096)
        #expect(sink.pollFD != nil && sink.pollFD != pipe.writer, "a non-blocking description of its own")
        let total = 200_000  // more than the pipe (64 KiB) and the buffer hold
        for index in 0..<total { sink.write(ConsoleSinkTests.byte(index)) }
        let counters = sink.counters
        let written = Int(counters["console_bytes"] ?? 0)
        #expect(counters["console_buffered_bytes"] == 4096)
        #expect(Int(counters["console_dropped_bytes"] ?? 0) == total - written - 4096)
        #expect(written > 0 && written <= 1 << 20)
        #expect(fcntl(pipe.writer, F_GETFL) & O_NONBLOCK == 0, "the caller's descriptor keeps its flags")

        // The reader catches up: what was kept comes out in order, the buffer after the pipe's bytes.
        var received = pipe.readAvailable()
        sink.drain()
        received += pipe.readAvailable()
        #expect(received.count == written + 4096)
        #expect(received == (0..<(written + 4096)).map(ConsoleSinkTests.byte))
        #expect(sink.counters["console_buffered_bytes"] == 0)
    }

    @Test("the event loop drains the buffer while the reader reads; nothing is dropped")
    func loopDrains() throws {
        let pipe = Pipe()
        let sink = BufferedConsoleSink(fd: pipe.writer, capacity: 1 << 20)
        let loop = try EventLoop()
        loop.subscribeConsole(sink, logger: .discarding)
        let total = 300_000
        for index in 0..<total { sink.write(ConsoleSinkTests.byte(index)) }
        #expect((sink.counters["console_buffered_bytes"] ?? 0) > 0, "the pipe filled up")
        var received: [UInt8] = []
        var rounds = 0
        try loop.run(timeoutMilliseconds: 10) {
            received += pipe.readAvailable()
            rounds += 1
            if received.count >= total || rounds > 10_000 { loop.stop() }
        }
        #expect(received == (0..<total).map(ConsoleSinkTests.byte))
        #expect(sink.counters["console_dropped_bytes"] == 0)
        loop.unsubscribeAll()
    }

    @Test("a regular file is written as it is; finish() reports nothing dropped")
    func regularFile() throws {
        let path = "/tmp/kvmrun-unit-\(getpid())-console"
        let fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        defer { close(fd); unlink(path) }
        let sink = BufferedConsoleSink(fd: fd)
        #expect(sink.pollFD == nil)
        for byte in Array("login: ".utf8) { sink.write(byte) }
        #expect(sink.finish(timeoutMilliseconds: 100) == 0)
        var bytes = [UInt8](repeating: 0, count: 16)
        // SAFETY: reads at most 16 bytes into the local array.
        let count = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        #expect(Array(bytes[0..<max(0, count)]) == Array("login: ".utf8))
    }

    @Test("at exit, bytes a stalled reader never takes are counted as dropped after the timeout")
    func finishStalled() {
        let pipe = Pipe()
        let sink = BufferedConsoleSink(fd: pipe.writer, capacity: 1024)
        for index in 0..<100_000 { sink.write(ConsoleSinkTests.byte(index)) }
        let before = sink.counters["console_dropped_bytes"] ?? 0
        #expect(sink.finish(timeoutMilliseconds: 50) == before + 1024)
        #expect(sink.counters["console_buffered_bytes"] == 0)
    }
}
