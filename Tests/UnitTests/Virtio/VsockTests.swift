#if canImport(Glibc)
import Glibc
#endif
import Memory
import Testing
@testable import VMM
@testable import Virtio
import VirtioTesting

@Suite("virtio-vsock")
struct VsockTests {
    @Test("the header is 44 little-endian bytes in spec order and parses back")
    func headerLayout() throws {
        let header = VsockHeader(srcCID: 0x0102_0304_0506_0708, dstCID: 2, srcPort: 0x1122_3344, dstPort: 5000,
                                 length: 7, op: .rw, flags: 3, bufAlloc: 0xAABB_CCDD, fwdCnt: 9)
        let bytes = header.bytes
        #expect(bytes.count == 44)
        #expect(Array(bytes[0..<8]) == [8, 7, 6, 5, 4, 3, 2, 1])
        #expect(Array(bytes[16..<20]) == [0x44, 0x33, 0x22, 0x11])
        #expect(bytes[24] == 7 && bytes[28] == 1 && bytes[30] == 5 && bytes[32] == 3)
        #expect(Array(bytes[36..<40]) == [0xDD, 0xCC, 0xBB, 0xAA] && bytes[40] == 9)
        #expect(VsockHeader(bytes: bytes) == header)
        #expect(VsockHeader(bytes: Array(bytes[0..<43])) == nil)
    }

    @Test("config space is the guest CID as a little-endian u64")
    func configSpace() throws {
        let guest = try VsockGuest()
        #expect(guest.driver.readConfig(offset: 0, count: 8) == [3, 0, 0, 0, 0, 0, 0, 0])
        #expect(guest.driver.readRegister(MMIOTransport.Register.deviceID) == 19)
    }

    @Test("credit: never more than the peer's free buffer, wrapping counters, guest overruns caught")
    func creditAccounting() {
        var credit = VsockCredit()
        credit.update(from: VsockHeader(srcCID: 3, dstCID: 2, srcPort: 1, dstPort: 2, op: .rw, bufAlloc: 1000, fwdCnt: 0))
        #expect(credit.peerFree == 1000)
        credit.txCnt = 600
        #expect(credit.peerFree == 400)
        credit.txCnt = 1000
        #expect(credit.peerFree == 0)
        // Free-running counters near the u32 wrap.
        credit.txCnt = 50
        credit.peerFwdCnt = UInt32.max - 99
        #expect(credit.peerFree == 850)
        credit.peerBufAlloc = 100  // the guest shrank its buffer below what is in flight
        #expect(credit.peerFree == 0)

        #expect(credit.guestMaySend(VsockCredit.bufferSize))
        credit.rxCnt = 10
        #expect(!credit.guestMaySend(VsockCredit.bufferSize))
        credit.fwdCnt = 10
        #expect(credit.guestMaySend(VsockCredit.bufferSize))
        #expect(!credit.updateDue)
        credit.fwdCnt = VsockCredit.bufferSize / 4
        #expect(credit.updateDue)
        var header = VsockHeader(srcCID: 2, dstCID: 3, srcPort: 2, dstPort: 1, op: .creditUpdate)
        credit.stamp(&header)
        #expect(header.bufAlloc == VsockCredit.bufferSize && header.fwdCnt == credit.fwdCnt && !credit.updateDue)
    }

    @Test("REQUEST to a host port nobody listens on is answered with RST")
    func requestToClosedPort() throws {
        let guest = try VsockGuest()
        defer { guest.device.reset() }
        try guest.send(.request, from: 1234, to: 9999)
        let packets = try guest.received()
        #expect(packets.count == 1)
        let reply = try #require(packets.first).header
        #expect(reply.knownOp == .rst)
        #expect(reply.srcCID == 2 && reply.dstCID == 3 && reply.srcPort == 9999 && reply.dstPort == 1234)
        #expect(!guest.driver.needsReset)
    }

    @Test("guest-initiated stream: RESPONSE, data both ways, the guest's credit respected, RST on close")
    func guestStream() throws {
        let guest = try VsockGuest()
        let server = try HostSocket.listen("\(guest.uds)_9000")
        defer { close(server); unlink("\(guest.uds)_9000"); guest.device.reset() }

        try guest.send(.request, from: 40000, to: 9000, bufAlloc: 100)
        #expect(try guest.received().map(\.header.knownOp) == [.response])
        let host = accept(server, nil, nil)
        defer { close(host) }

        try guest.send(.rw, from: 40000, to: 9000, payload: Array("hello host".utf8), bufAlloc: 100)
        #expect(HostSocket.readAvailable(host) == Array("hello host".utf8))

        // The guest has 100 bytes of buffer: only 100 of 1000 bytes may go until it consumes.
        let data = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        HostSocket.write(host, data)
        try guest.pollHost()
        let first = try guest.received()
        #expect(first.map(\.payload.count) == [100])
        #expect(first.first?.header.knownOp == .rw)
        try guest.send(.creditUpdate, from: 40000, to: 9000, bufAlloc: 100, fwdCnt: 100)
        let second = try guest.received()
        #expect(second.map(\.payload.count) == [100])
        #expect((first + second).flatMap(\.payload) == Array(data[0..<200]))

        // The guest closes its side: the host sees end of stream and the guest gets RST.
        try guest.send(.shutdown, from: 40000, to: 9000, flags: VsockHeader.Shutdown.both, fwdCnt: 200)
        #expect(try guest.received().map(\.header.knownOp) == [.rst])
        var rest: [UInt8] = []
        while let chunk = HostSocket.readAvailable(host) { rest += chunk; if chunk.isEmpty { break } }
        #expect(HostSocket.readAvailable(host) == nil, "host socket closed")
    }

    @Test("host-initiated stream: CONNECT <port> → REQUEST, RESPONSE → OK <hostport>, RST closes the client")
    func hostStream() throws {
        let guest = try VsockGuest()
        defer { guest.device.reset() }
        var info = stat()
        #expect(lstat(guest.uds, &info) == 0 && info.st_mode & 0o777 == 0o600)
        let client = try HostSocket.connect(guest.uds)
        defer { close(client) }
        HostSocket.write(client, Array("CONNECT 5000\n".utf8))
        try guest.pollHost()
        let request = try #require(try guest.received().first).header
        #expect(request.knownOp == .request && request.dstPort == 5000 && request.dstCID == 3)
        #expect(request.srcPort >= 1 << 30)

        try guest.send(.response, from: 5000, to: request.srcPort)
        #expect(HostSocket.readAvailable(client) == Array("OK \(request.srcPort)\n".utf8))
        HostSocket.write(client, Array("ping".utf8))
        try guest.pollHost()
        #expect(try guest.received().map(\.payload) == [Array("ping".utf8)])

        try guest.send(.rst, from: 5000, to: request.srcPort)
        #expect(HostSocket.readAvailable(client) == nil)
        #expect(try guest.received().isEmpty, "no answer to an RST")
    }

    @Test("host-initiated stream: a host that reads slowly gets everything once it reads (writability is watched)")
    func slowHostReader() throws {
        let guest = try VsockGuest(rxBuffers: 16)
        defer { guest.device.reset() }
        let client = try HostSocket.connect(guest.uds)
        defer { close(client) }
        HostSocket.write(client, Array("CONNECT 5001\n".utf8))
        try guest.pollHost()
        let hostPort = try #require(try guest.received().first).header.srcPort
        try guest.send(.response, from: 5001, to: hostPort)
        #expect(HostSocket.readAvailable(client) == Array("OK \(hostPort)\n".utf8))

        // 240 KiB (within our 256 KiB credit) while the host reads nothing: more than the socket holds.
        let data = (0..<(240 * 1024)).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ $0 >> 8) }
        for start in stride(from: 0, to: data.count, by: 60 * 1024) {
            try guest.send(.rw, from: 5001, to: hostPort, payload: Array(data[start..<(start + 60 * 1024)]))
        }
        var received: [UInt8] = []
        for _ in 0..<100 where received.count < data.count {
            received += HostSocket.readAvailable(client) ?? []
            try guest.pollHost()
        }
        let intact = received == data
        #expect(received.count == data.count)
        #expect(intact, "the bytes arrive in order, unchanged")
        let updates = try guest.received().filter { $0.header.knownOp == .creditUpdate }
        // Updates come every quarter buffer forwarded: the guest's view is never a full buffer behind.
        let heard = Int(updates.last?.header.fwdCnt ?? 0)
        #expect(heard > 0 && heard + Int(VsockCredit.bufferSize) / 4 > data.count, "last update said \(heard)")
    }

    @Test("a guest that sends beyond the credit we advertised gets its stream reset")
    func guestCreditOverrun() throws {
        let guest = try VsockGuest()
        let server = try HostSocket.listen("\(guest.uds)_9100")
        defer { close(server); unlink("\(guest.uds)_9100"); guest.device.reset() }
        try guest.send(.request, from: 41000, to: 9100)
        #expect(try guest.received().map(\.header.knownOp) == [.response])
        let host = accept(server, nil, nil)
        defer { close(host) }
        // The host reads nothing: the socket buffer fills, then our 256 KiB, then the guest overruns.
        let chunk = [UInt8](repeating: 0x5A, count: 60 * 1024)
        for _ in 0..<16 { try guest.send(.rw, from: 41000, to: 9100, payload: chunk) }
        #expect(try guest.received().map(\.header.knownOp).last == .rst)
        #expect(guest.device.counters["credit_violations"] == 1)
        #expect(!guest.driver.needsReset, "a misbehaving stream is reset, the device keeps working")
    }

    @Test("CONNECT lines: the port, any case and spacing; anything else is refused")
    func connectLines() {
        let parse = { (text: String) in VsockMuxer.parseConnect(Array(text.utf8)) }
        #expect(parse("CONNECT 5000") == 5000)
        #expect(parse("connect  52\r") == 52)
        #expect(parse("CONNECT 4294967295") == UInt32.max)
        for bad in ["CONNECT", "CONNECT x", "CONNECT -1", "CONNECT 4294967296", "CONNECT 1 2", "OPEN 5", "", "CONNECT +5"] {
            #expect(parse(bad) == nil, "accepted '\(bad)'")
        }
    }

    @Test("a bad CONNECT line closes the client without bothering the guest")
    func badConnectLine() throws {
        let guest = try VsockGuest()
        defer { guest.device.reset() }
        let client = try HostSocket.connect(guest.uds)
        defer { close(client) }
        HostSocket.write(client, Array("CONNECT five\n".utf8))
        try guest.pollHost()
        #expect(try guest.received().isEmpty)
        #expect(HostSocket.readAvailable(client) == nil)
    }

    @Test("packets for unknown streams, unknown ops and other socket types get RST; foreign CIDs are dropped")
    func unknownPackets() throws {
        let guest = try VsockGuest()
        defer { guest.device.reset() }
        try guest.send(.rw, from: 1, to: 2, payload: [1, 2, 3])
        var header = VsockHeader(srcCID: 3, dstCID: 2, srcPort: 5, dstPort: 6, op: .request)
        header.type = 2  // SEQPACKET, not negotiated
        try guest.sendRaw(header.bytes)
        header.type = VsockHeader.Kind.stream
        header.op = 99
        try guest.sendRaw(header.bytes)
        header.op = VsockHeader.Op.rst.rawValue
        try guest.sendRaw(header.bytes)  // an RST is never answered
        header.op = VsockHeader.Op.request.rawValue
        header.srcCID = 77  // pretends to be another VM
        try guest.sendRaw(header.bytes)
        let replies = try guest.received()
        #expect(replies.map(\.header.knownOp) == [.rst, .rst, .rst])
        #expect(replies.map(\.header.dstPort) == [1, 5, 5])
        #expect(!guest.driver.needsReset)
        #expect(guest.device.counters["dropped_packets"] == 1)
    }

    @Test("malformed tx chains put the device into NEEDS_RESET, never crash", arguments: [0, 1, 2])
    func malformedPackets(kind: Int) throws {
        let guest = try VsockGuest()
        defer { guest.device.reset() }
        let header = VsockHeader(srcCID: 3, dstCID: 2, srcPort: 1, dstPort: 2, length: 5000, op: .rw)
        switch kind {
        case 0: try guest.sendRaw(Array(header.bytes[0..<20]))        // shorter than a header
        case 1: try guest.sendRaw(header.bytes, payload: [1, 2, 3])  // claims more payload than it has
        default:
            var huge = header
            huge.length = 1 << 20                                      // above the 64 KiB packet limit
            try guest.sendRaw(huge.bytes, payload: [UInt8](repeating: 0, count: 16))
        }
        #expect(guest.driver.needsReset)
        #expect(guest.driver.log.first?.contains("tx") == true, "log: \(guest.driver.log)")
    }

    @Test("an rx buffer too small for a header is a driver error")
    func tinyRxBuffer() throws {
        let guest = try VsockGuest(rxBuffers: 0)
        defer { guest.device.reset() }
        try guest.offerRx(1, size: 16)
        try guest.send(.request, from: 1234, to: 9999)
        #expect(guest.driver.needsReset)
    }

    @Test("without rx buffers, replies wait; they are delivered when buffers come")
    func noRxBuffers() throws {
        let guest = try VsockGuest(rxBuffers: 0)
        defer { guest.device.reset() }
        for port in 0..<40 { try guest.send(.request, from: UInt32(port), to: 9999) }
        #expect(try guest.received().isEmpty)
        try guest.offerRx(40)
        #expect(try guest.received().map(\.header.dstPort) == (0..<40).map { UInt32($0) })
    }

    @Test("a live socket at the uds path is refused; a stale one is replaced; the file goes with the device")
    func socketPath() throws {
        let path = VsockGuest.temporaryPath("live")
        let live = try HostSocket.listen(path)
        #expect(throws: (any Error).self) { _ = try VsockDevice(cid: 3, udsPath: path) }
        close(live)  // now stale: the file stays, nobody accepts
        var device: VsockDevice? = try VsockDevice(cid: 3, udsPath: path)
        #expect(access(path, F_OK) == 0)
        _ = device
        device = nil
        #expect(access(path, F_OK) != 0)
    }

    @Test("--vsock parsing: cid=N,uds=PATH with clear errors", arguments: [
        ("cid=3,uds=/tmp/v.sock", nil),
        ("uds=/tmp/v.sock,cid=4294967294", nil),
        ("cid=2,uds=/tmp/v.sock", "reserved"),
        ("cid=4294967295,uds=/tmp/v.sock", "from 3 to"),
        ("cid=x,uds=/tmp/v.sock", "cid 'x'"),
        ("cid=3", "uds=PATH is missing"),
        ("uds=/tmp/v", "cid=N is missing"),
        ("cid=3,uds=", "uds is empty"),
        ("cid=3,uds=/a,port=1", "unknown key 'port'"),
        ("cid=3,cid=4,uds=/a", "cid given twice"),
        ("cid=3,uds=/" + String(repeating: "a", count: 120), "Unix socket path"),
    ])
    func parseOption(text: String, problem: String?) {
        do {
            let option = try VsockOption.parse(text)
            #expect(problem == nil, "accepted \(text)")
            #expect(option.cid >= 3 && option.udsPath.hasPrefix("/tmp/"))
        } catch {
            #expect(problem.map { error.description.contains($0) && error.description.hasPrefix("--vsock") } == true,
                    "\(text): \(error)")
        }
    }
}
