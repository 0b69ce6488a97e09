import Testing
@testable import Virtio

/// virtio-vsock against drivers that try to grow host memory.
@Suite("virtio-vsock against a hostile driver")
struct VsockHostileTests {
    @Test("a guest that keeps one RST pending while provoking thousands more keeps the control queue small")
    func controlQueueStaysBounded() throws {
        let guest = try VsockGuest(rxBuffers: 0)
        defer { guest.device.reset() }
        // Each round: a packet for a stream that does not exist (one more RST), then one rx
        // buffer (the oldest RST goes): one RST is always waiting.
        try guest.send(.rw, from: 40_000, to: 7, payload: [1])
        for round in 0..<3000 {
            try guest.send(.rw, from: 40_001 + UInt32(round % 1000), to: 7, payload: [1])
            try guest.offerRx(1, size: 64)
            #expect(try guest.received().map(\.header.knownOp) == [.rst])
        }
        let backlog = guest.device.controlBacklog
        #expect(backlog.pending == 1)
        #expect(backlog.capacity <= 256, "storage of \(backlog.capacity) packets for 1 pending")
        #expect(!guest.driver.needsReset)
    }

    @Test("the packet FIFO hands elements out in order across compactions")
    func fifoOrder() {
        var fifo = PacketFIFO<Int>()
        var next = 0, expected = 0
        for round in 0..<2000 {
            for _ in 0..<(round % 3 + 1) { fifo.append(next); next += 1 }
            for _ in 0..<(round % 2 + 1) {
                guard let value = fifo.popFirst() else { break }
                #expect(value == expected)
                expected += 1
            }
            #expect(fifo.count == next - expected)
        }
        while let value = fifo.popFirst() {
            #expect(value == expected)
            expected += 1
        }
        #expect(expected == next && fifo.isEmpty)
    }
}
