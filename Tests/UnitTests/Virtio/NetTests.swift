#if canImport(Glibc)
import Glibc
#endif
import CTap
import Memory
import Synchronization
import Logging
import Testing
import Virtio
import VirtioTesting
@testable import VMM

/// A datagram socket pair standing in for the tap: one frame per datagram, non-blocking on the
/// device's side. The test reads and writes the peer end.
final class SocketBackend: NetBackend, @unchecked Sendable {
    let fd: Int32
    let peer: Int32
    private(set) var offloads: [UInt32] = []
    var label: String { "socketpair" }

    init() throws {
        var fds: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0, &fds) == 0 else {
            throw VirtioDeviceError("socketpair failed")
        }
        fd = fds[0]
        peer = fds[1]
    }

    deinit {
        close(fd)
        close(peer)
    }

    func setOffloads(_ flags: UInt32) throws(VirtioDeviceError) { offloads.append(flags) }

    /// Sends `bytes` as one frame towards the device.
    func inject(_ bytes: [UInt8]) {
        // SAFETY: sends the local array.
        let sent = bytes.withUnsafeBytes { send(peer, $0.baseAddress, $0.count, 0) }
        #expect(sent == bytes.count)
    }

    /// The next frame the device wrote, or nil when there is none.
    func take() -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: 70_000)
        // SAFETY: receives at most buffer.count bytes into the local array.
        let count = buffer.withUnsafeMutableBytes { recv(peer, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
        return count < 0 ? nil : Array(buffer[0..<count])
    }
}

/// Records what the device asks of the event loop.
final class RecordingWatch: BackendWatch, @unchecked Sendable {
    private(set) var states: [Bool] = []
    var current: Bool? { states.last }
    func setReadable(_ enabled: Bool) { states.append(enabled) }
}

@Suite("virtio-net device")
struct NetDeviceTests {
    typealias F = NetSpec.Feature
    static let mac: [UInt8] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56]

    struct Rig {
        let driver: DriverDouble
        let device: NetDevice
        let backend: SocketBackend
        let watch: RecordingWatch
    }

    func rig(accepting features: UInt64 = .max) throws -> Rig {
        let backend = try SocketBackend()
        let device = NetDevice(backend: backend, mac: NetDeviceTests.mac, logger: .discarding)
        let driver = try DriverDouble(queueSize: 16)
        _ = driver.attach(device)
        let watch = RecordingWatch()
        device.connect(watch)
        let status = driver.initialize(accepting: features)
        #expect(status & MMIOTransport.Status.driverOK != 0)
        return Rig(driver: driver, device: device, backend: backend, watch: watch)
    }

    func header(_ seed: UInt8) -> [UInt8] { (0..<12).map { $0 == 10 || $0 == 11 ? 0 : seed &+ UInt8($0) } }
    func frame(_ count: Int, seed: Int) -> [UInt8] { (0..<count).map { UInt8(truncatingIfNeeded: $0 * 7 + seed) } }

    @Test("offers MAC, STATUS and checksum/TSO offloads both ways; config holds the MAC and LINK_UP")
    func featuresAndConfig() throws {
        let backend = try SocketBackend()
        let driver = try DriverDouble()
        _ = driver.attach(NetDevice(backend: backend, mac: NetDeviceTests.mac, logger: .discarding))
        let offered = driver.deviceFeatures
        for bit in [F.mac, F.status, F.csum, F.guestCsum, F.guestTSO4, F.guestTSO6, F.hostTSO4, F.hostTSO6,
                    F.mergeableRxBuffers, VirtioFeature.version1] {
            #expect(offered & bit != 0, "feature 0x\(String(bit, radix: 16)) offered")
        }
        #expect(driver.readRegister(MMIOTransport.Register.deviceID) == 1)
        #expect(driver.readConfig(offset: 0, count: 8) == NetDeviceTests.mac + [1, 0])
        #expect(driver.readConfig(offset: 6, count: 4) == [1, 0, 0, 0], "past the config reads as zero")
    }

    @Test("TUNSETOFFLOAD follows the receive offloads the driver accepted, and is cleared on reset")
    func offloads() throws {
        let all = try rig()
        let expected = UInt32(KVMRUN_TUN_F_CSUM | KVMRUN_TUN_F_TSO4 | KVMRUN_TUN_F_TSO6 | KVMRUN_TUN_F_TSO_ECN)
        #expect(all.backend.offloads.last == expected)
        all.driver.writeRegister(MMIOTransport.Register.status, 0)
        #expect(all.backend.offloads.last == 0)

        let tso4 = try rig(accepting: VirtioFeature.version1 | F.guestCsum | F.guestTSO4)
        #expect(tso4.backend.offloads.last == UInt32(KVMRUN_TUN_F_CSUM | KVMRUN_TUN_F_TSO4))
        let noCsum = try rig(accepting: VirtioFeature.version1 | F.guestTSO4 | F.guestTSO6)
        #expect(noCsum.backend.offloads.last == 0, "TSO without GUEST_CSUM gives no offloads")
        let none = try rig(accepting: VirtioFeature.version1)
        #expect(none.backend.offloads.last == 0)
    }

    @Test("transmit: header and frame, spread over three buffers, reach the tap as one frame")
    func transmit() throws {
        let rig = try rig()
        let header = header(0x40), frame = frame(1400, seed: 3)
        let d = rig.driver
        let head = try d.publish([
            .init(address: try d.allocate(12, bytes: header), length: 12, writable: false),
            .init(address: try d.allocate(1000, bytes: Array(frame[0..<1000])), length: 1000, writable: false),
            .init(address: try d.allocate(400, bytes: Array(frame[1000...])), length: 400, writable: false),
        ], queue: NetSpec.transmitQueue)
        #expect(rig.backend.take() == header + frame)
        #expect(rig.backend.take() == nil, "exactly one frame")
        let used = try d.takeUsed(queue: NetSpec.transmitQueue)
        #expect(used.map(\.head) == [head])
        #expect(d.line.count == 1)
        #expect(rig.device.counters["tx_packets"] == 1)
        #expect(rig.device.counters["tx_bytes"] == 1400)
        #expect(!d.needsReset)
    }

    @Test("receive: a frame from the tap lands in the driver's buffers with num_buffers = 1")
    func receive() throws {
        let rig = try rig()
        let d = rig.driver
        #expect(rig.watch.current == true, "watching the tap once activated")
        let headerBuffer = try d.allocate(12), body = try d.allocate(2048)
        let head = try d.publish([.init(address: headerBuffer, length: 12, writable: true),
                                  .init(address: body, length: 2048, writable: true)], queue: NetSpec.receiveQueue)
        var header = header(0x10)
        let frame = frame(300, seed: 9)
        header[10] = 0x77  // the device sets num_buffers itself
        rig.backend.inject(header + frame)
        try rig.device.backendReadable()
        let used = try d.takeUsed(queue: NetSpec.receiveQueue)
        #expect(used.count == 1)
        #expect(used.first?.head == head)
        #expect(used.first?.length == 312)
        var expectedHeader = header
        expectedHeader[10] = 1
        #expect(try d.memory.read(count: 12, at: headerBuffer) == expectedHeader)
        #expect(try d.memory.read(count: 300, at: body) == frame)
        #expect(d.line.count == 1)
        #expect(rig.device.counters["rx_packets"] == 1)
        #expect(rig.device.counters["rx_bytes"] == 300)
        #expect(rig.watch.current == true)
    }

    @Test("without receive buffers the device stops watching the tap; a notify with buffers resumes it")
    func receiveWaitsForBuffers() throws {
        let rig = try rig()
        let d = rig.driver
        let first = frame(60, seed: 1), second = frame(70, seed: 2)
        rig.backend.inject(header(1) + first)
        rig.backend.inject(header(2) + second)
        try rig.device.backendReadable()
        #expect(rig.watch.current == false)
        #expect(try d.takeUsed(queue: NetSpec.receiveQueue).isEmpty)
        let a = try d.allocate(100), b = try d.allocate(100)
        try d.publish([.init(address: a, length: 100, writable: true)], queue: NetSpec.receiveQueue)
        try d.publish([.init(address: b, length: 100, writable: true)], queue: NetSpec.receiveQueue)
        let used = try d.takeUsed(queue: NetSpec.receiveQueue)
        #expect(used.map(\.length) == [72, 82], "both frames, in order")
        #expect(try d.memory.read(count: 60, at: a + 12) == first)
        #expect(try d.memory.read(count: 70, at: b + 12) == second)
        #expect(rig.watch.current == true, "the tap is empty again: watched")
        #expect(rig.watch.states.count < 6, "no flapping: \(rig.watch.states)")
    }

    @Test("without MRG_RXBUF a frame larger than the buffer is dropped and the buffer kept for the next frame")
    func oversizeFrame() throws {
        let rig = try rig(accepting: ~F.mergeableRxBuffers)
        let d = rig.driver
        let buffer = try d.allocate(100)
        let head = try d.publish([.init(address: buffer, length: 100, writable: true)], queue: NetSpec.receiveQueue)
        rig.backend.inject(header(0) + frame(500, seed: 0))
        let small = frame(40, seed: 5)
        rig.backend.inject(header(0) + small)
        rig.backend.inject([1, 2, 3])  // shorter than the header: dropped too
        try rig.device.backendReadable()
        let used = try d.takeUsed(queue: NetSpec.receiveQueue)
        #expect(used.count == 1)
        #expect(used.first?.head == head)
        #expect(used.first?.length == 52)
        #expect(try d.memory.read(count: 40, at: buffer + 12) == small)
        #expect(rig.device.counters["rx_dropped"] == 2)
        #expect(!d.needsReset)
    }

    @Test("MRG_RXBUF: a frame spreads over as many buffers as it needs, num_buffers says how many")
    func mergeable() throws {
        let rig = try rig()
        let d = rig.driver
        let buffers = try (0..<3).map { _ in try d.allocate(1500) }
        var heads: [UInt16] = []
        for buffer in buffers {
            heads.append(try d.publish([.init(address: buffer, length: 1500, writable: true)], queue: NetSpec.receiveQueue))
        }
        let frame = frame(2988, seed: 4)  // 3000 bytes with the header: two buffers
        rig.backend.inject(header(0) + frame)
        try rig.device.backendReadable()
        let used = try d.takeUsed(queue: NetSpec.receiveQueue)
        #expect(used.map(\.head) == Array(heads[0..<2]))
        #expect(used.map(\.length) == [1500, 1500])
        #expect(try d.memory.read(count: 2, at: buffers[0] + 10) == [2, 0], "num_buffers")
        #expect(try d.memory.read(count: 1488, at: buffers[0] + 12) + d.memory.read(count: 1500, at: buffers[1])
            == frame)
        #expect(d.line.count == 1)

        // The third buffer alone cannot hold the next large frame: it waits for one more.
        rig.backend.inject(header(0) + frame)
        try rig.device.backendReadable()
        #expect(try d.takeUsed(queue: NetSpec.receiveQueue).isEmpty)
        #expect(rig.watch.current == false)
        let fourth = try d.allocate(4096)
        try d.publish([.init(address: fourth, length: 4096, writable: true)], queue: NetSpec.receiveQueue)
        let next = try d.takeUsed(queue: NetSpec.receiveQueue)
        #expect(next.map(\.length) == [1500, 1500])
        #expect(try d.memory.read(count: 1500, at: fourth) == Array(frame[1488...]))
        #expect(rig.watch.current == true)
    }

    @Test("after the backend fails the device stops watching and reading it; transmit goes on")
    func backendFailure() throws {
        let log = LogRecord()
        let backend = try SocketBackend()
        let device = NetDevice(backend: backend, mac: NetDeviceTests.mac, logger: log.logger)
        let d = try DriverDouble()
        _ = d.attach(device)
        let watch = RecordingWatch()
        device.connect(watch)
        d.initialize()
        device.backendFailed("tap gone")
        device.backendFailed("tap gone")
        #expect(log.lines.withLock { $0.map(\.level) } == [.warning], "logged once, as a warning: \(log.messages)")
        #expect(log.messages.first?.contains("tap gone") == true)
        #expect(watch.current == false)
        try d.publish([.init(address: try d.allocate(2048), length: 2048, writable: true)], queue: NetSpec.receiveQueue)
        backend.inject(header(0) + frame(64, seed: 0))
        try device.backendReadable()
        #expect(try d.takeUsed(queue: NetSpec.receiveQueue).isEmpty)
        #expect(watch.current == false)
        try d.publish([.init(address: try d.allocate(12, bytes: header(0)), length: 12, writable: false)],
                      queue: NetSpec.transmitQueue)
        #expect(backend.take() == header(0))
        #expect(!d.needsReset)
    }

    @Test("a transmit chain longer than any frame is dropped and counted; the device goes on")
    func oversizeTransmit() throws {
        let rig = try rig()
        let d = rig.driver
        try d.publish([.init(address: try d.allocate(12), length: 12, writable: false),
                       .init(address: try d.allocate(70_000), length: 70_000, writable: false)], queue: NetSpec.transmitQueue)
        #expect(rig.backend.take() == nil)
        #expect(try d.takeUsed(queue: NetSpec.transmitQueue).count == 1)
        #expect(rig.device.counters["tx_dropped"] == 1)
        #expect(!d.needsReset)
    }

    @Test("MRG_RXBUF with header-sized buffers: a frame no ring's worth can hold is dropped, the buffers serve the next")
    func mergeableRingTooSmall() throws {
        let rig = try rig()
        let d = rig.driver
        let buffers = try (0..<Int(d.queueSize)).map { _ in try d.allocate(12) }
        for buffer in buffers {
            try d.publish([.init(address: buffer, length: 12, writable: true)], queue: NetSpec.receiveQueue, notify: false)
        }
        rig.backend.inject(header(0) + frame(300, seed: 0))  // 312 bytes > 16 × 12
        let small = frame(90, seed: 1)  // 102 bytes: nine buffers
        rig.backend.inject(header(0) + small)
        try rig.device.backendReadable()
        let used = try d.takeUsed(queue: NetSpec.receiveQueue)
        #expect(used.count == 9)
        #expect(used.map(\.length) == Array(repeating: 12, count: 8) + [6])
        #expect(try d.memory.read(count: 2, at: buffers[0] + 10) == [9, 0])
        let received = try buffers[1..<9].flatMap { try d.memory.read(count: 12, at: $0) }
        #expect(Array(received.prefix(90)) == small)
        #expect(rig.device.counters["rx_dropped"] == 1)
        #expect(!d.needsReset)
    }

    @Test("a transmit chain shorter than the header is a protocol error: NEEDS_RESET, nothing sent")
    func shortTransmit() throws {
        let rig = try rig()
        let d = rig.driver
        try d.publish([.init(address: try d.allocate(4), length: 4, writable: false)], queue: NetSpec.transmitQueue)
        #expect(d.needsReset)
        #expect(d.log.first?.contains("header") == true, "log: \(d.log)")
        #expect(rig.backend.take() == nil)
    }

    @Test("a transmit chain with a device-writable buffer is a protocol error")
    func writableTransmit() throws {
        let rig = try rig()
        let d = rig.driver
        try d.publish([.init(address: try d.allocate(12), length: 12, writable: false),
                       .init(address: try d.allocate(64), length: 64, writable: true)], queue: NetSpec.transmitQueue)
        #expect(d.needsReset)
        #expect(rig.backend.take() == nil)
    }

    @Test("a receive chain with a device-readable buffer is a protocol error; the device then stops")
    func readableReceive() throws {
        let rig = try rig()
        let d = rig.driver
        rig.backend.inject(header(0) + frame(20, seed: 0))
        try d.publish([.init(address: try d.allocate(64), length: 64, writable: false)], queue: NetSpec.receiveQueue)
        #expect(d.needsReset)
        #expect(rig.watch.current == false)
        rig.backend.inject(header(0) + frame(20, seed: 0))
        try rig.device.backendReadable()  // inactive: nothing happens
        #expect(try d.takeUsed(queue: NetSpec.receiveQueue).isEmpty)
    }

    @Test("a receive chain without room for the header is a protocol error")
    func tinyReceive() throws {
        let rig = try rig()
        let d = rig.driver
        try d.publish([.init(address: try d.allocate(8), length: 8, writable: true)], queue: NetSpec.receiveQueue)
        rig.backend.inject(header(0) + frame(20, seed: 0))
        #expect(throws: VirtioDeviceError.self) { try rig.device.backendReadable() }
    }

    @Test("frames queued in the tap before the driver starts are discarded at activation")
    func discardBeforeActivation() throws {
        let backend = try SocketBackend()
        let device = NetDevice(backend: backend, mac: NetDeviceTests.mac, logger: .discarding)
        let driver = try DriverDouble()
        _ = driver.attach(device)
        backend.inject(header(0) + frame(30, seed: 0))
        driver.initialize()
        try driver.publish([.init(address: try driver.allocate(100), length: 100, writable: true)], queue: 0)
        #expect(try driver.takeUsed(queue: 0).isEmpty)
    }
}

@Suite("--net option")
struct NetOptionTests {
    @Test("tap only, and tap with a MAC (any case)")
    func valid() throws {
        #expect(try NetOption.parse("tap=kvm0", index: 0) == NetOption(tap: "kvm0"))
        #expect(try NetOption.parse("tap=tap-15-chars-ab,mac=52:54:00:AB:cd:0F", index: 1)
            == NetOption(tap: "tap-15-chars-ab", mac: [0x52, 0x54, 0x00, 0xAB, 0xCD, 0x0F]))
        #expect(try NetOption.parse("mac=02:00:00:00:00:01,tap=t", index: 0).tap == "t")
    }

    @Test("bad input names --net and the problem", arguments: [
        ("", "not key=value"),
        ("kvm0", "not key=value"),
        ("mac=02:00:00:00:00:01", "tap=NAME is required"),
        ("tap=", "is empty"),
        ("tap=sixteen-chars-xx", "longer than 15"),
        ("tap=a/b", "contains '/'"),
        ("tap=a b", "contains ' '"),
        ("tap=tap%d", "contains '%'"),
        ("tap=..", "not a valid interface name"),
        ("tap=a,tap=b", "given twice"),
        ("tap=a,mac=52:54:00:12:34", "six hex pairs"),
        ("tap=a,mac=52:54:00:12:34:5g", "six hex pairs"),
        ("tap=a,mac=525:4:00:12:34:56", "six hex pairs"),
        ("tap=a,mac=+2:54:00:12:34:56", "six hex pairs"),
        ("tap=a,mac=01:00:5e:00:00:01", "multicast"),
        ("tap=a,mac=00:00:00:00:00:00", "all zeros"),
        ("tap=a,speed=10", "unknown key 'speed'"),
        ("tap=a,", "not key=value"),
    ])
    func invalid(text: String, message: String) {
        do {
            _ = try NetOption.parse(text, index: 0)
            Issue.record("'\(text)' was accepted")
        } catch {
            #expect(error.description.hasPrefix("--net \(text):"), "\(error)")
            #expect(error.description.contains(message), "\(error)")
        }
    }

    @Test("default MACs are locally administered unicast and differ per device and per process")
    func defaultMAC() {
        let mac = NetOption.defaultMAC(index: 0, pid: 0x123456)
        #expect(mac.count == 6)
        #expect(mac[0] & 0x01 == 0, "unicast")
        #expect(mac[0] & 0x02 != 0, "locally administered")
        #expect(mac != NetOption.defaultMAC(index: 1, pid: 0x123456))
        #expect(mac != NetOption.defaultMAC(index: 0, pid: 0x123457))
        #expect(NetOption.format(mac) == "02:4b:12:34:56:00")
    }
}
