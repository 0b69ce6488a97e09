#if canImport(Glibc)
import Glibc
#endif
import CKVM
import Memory
import Synchronization
import Sys
import Testing
@testable import VMM
@testable import Virtio
import VirtioTesting

/// A driver that publishes without end must not keep the event loop: each wake-up serves a
/// budget of chains, then the device is notified again through its own eventfd.
@Suite("Virtqueue budget and re-arm")
struct QueueBudgetTests {
    final class Count: Sendable {
        let count = Atomic<Int>(0)
    }

    static func eventFD() -> FileDescriptor { FileDescriptor(kvmrun_eventfd()) }

    @Test("one notify serves at most Queue.defaultBudget chains and asks to be notified again")
    func budgetPerNotify() throws {
        let driver = try DriverDouble(queueSize: 128)
        let requeued = Count()
        _ = driver.attach(RngDevice()) { queue in
            #expect(queue == 0)
            requeued.count.wrappingAdd(1, ordering: .relaxed)
        }
        driver.initialize()
        for _ in 0..<100 {
            try driver.publish([.init(address: try driver.allocate(16), length: 16, writable: true)], queue: 0, notify: false)
        }
        #expect(driver.transport.notify(queue: 0) == .budgetExhausted)
        #expect(try driver.takeUsed(queue: 0).count == Queue.defaultBudget)
        #expect(requeued.count.load(ordering: .relaxed) == 1)
        #expect(driver.transport.notify(queue: 0) == .finished)
        #expect(try driver.takeUsed(queue: 0).count == 100 - Queue.defaultBudget)
        #expect(requeued.count.load(ordering: .relaxed) == 1)
        #expect(!driver.needsReset)
    }

    @Test("a driver that republishes every buffer as it is served cannot keep another fd's handler from running")
    func publisherCannotStarveLoop() throws {
        let driver = try DriverDouble(queueSize: 16)
        let notifier = QueueBudgetTests.eventFD(), other = QueueBudgetTests.eventFD()
        let device = RepublishingDevice(driver: driver, limit: 100_000)
        let transport = driver.attach(device) { _ in notifier.signalEvent() }
        driver.initialize()
        for _ in 0..<16 {
            try driver.publish([.init(address: try driver.allocate(16), length: 16, writable: true)], queue: 0, notify: false)
        }
        let loop = try EventLoop()
        try loop.subscribeQueue(notifier, transport: transport, queue: 0)
        var servedBefore: Int?
        try loop.subscribe(fd: other.raw) { _ in
            other.consumeEvent()
            servedBefore = device.served
            loop.stop()
        }
        notifier.signalEvent()
        other.signalEvent()
        try loop.run(timeoutMilliseconds: 1000)
        let served = try #require(servedBefore)
        #expect(served > 0 && served < device.limit, "the other fd was served only after the driver stopped publishing")
        #expect(!driver.needsReset)
    }
}

extension QueueBudgetTests {
    @Test("virtio-net transmit sends one ring's worth per notify, then asks to be notified again")
    func netTransmitBudget() throws {
        let backend = try SocketBackend()
        let driver = try DriverDouble(queueSize: 16)
        let requeued = Count()
        _ = driver.attach(NetDevice(backend: backend, mac: [2, 0, 0, 0, 0, 1], logger: .discarding)) { queue in
            #expect(queue == NetSpec.transmitQueue)
            requeued.count.wrappingAdd(1, ordering: .relaxed)
        }
        driver.initialize()
        func publishFrames(_ count: Int) throws {
            for _ in 0..<count {
                try driver.publish([.init(address: try driver.allocate(72), length: 72, writable: false)],
                                   queue: NetSpec.transmitQueue, notify: false)
            }
        }
        try publishFrames(16)
        #expect(driver.transport.notify(queue: NetSpec.transmitQueue) == .budgetExhausted)
        #expect(try driver.takeUsed(queue: NetSpec.transmitQueue).count == 16)
        #expect(requeued.count.load(ordering: .relaxed) == 1)
        try publishFrames(3)
        #expect(driver.transport.notify(queue: NetSpec.transmitQueue) == .finished)
        #expect(try driver.takeUsed(queue: NetSpec.transmitQueue).count == 3)
        var frames = 0
        while backend.take() != nil { frames += 1 }
        #expect(frames == 19)
    }

    @Test("vsock moves at most exchangeBudget packets per wake-up and asks to be notified again")
    func vsockExchangeBudget() throws {
        let guest = try VsockGuest(rxBuffers: 256, queueSize: 256)
        defer { guest.device.reset() }
        // 200 packets for streams that do not exist: 200 RSTs to deliver, 400 packets in all.
        for port in 0..<200 {
            try guest.send(.rw, from: 50_000 + UInt32(port), to: 7, payload: [1], notify: false)
        }
        #expect(guest.driver.transport.notify(queue: VsockDevice.txQueue) == .budgetExhausted)
        let txUsed = try guest.driver.takeUsed(queue: VsockDevice.txQueue).count
        var delivered = try guest.received().count
        #expect(txUsed + delivered == VsockDevice.exchangeBudget)
        #expect(guest.driver.transport.notify(queue: VsockDevice.txQueue) == .finished)
        delivered += try guest.received().count
        #expect(txUsed + (try guest.driver.takeUsed(queue: VsockDevice.txQueue).count) == 200)
        #expect(delivered == 200)
        #expect(!guest.driver.needsReset)
    }
}

/// A device that serves its queue with `Queue.drain` while its driver puts every buffer back
/// on the available ring the moment the device has read it, as a driver on a second vCPU can
/// (up to `limit` buffers, so that a drain without a budget ends at all).
final class RepublishingDevice: VirtioDevice, @unchecked Sendable {
    let driver: DriverDouble
    let limit: Int
    private(set) var served = 0
    private var queue: Queue?

    init(driver: DriverDouble, limit: Int) {
        self.driver = driver
        self.limit = limit
    }

    var deviceType: VirtioDeviceType { .rng }
    var availableFeatures: UInt64 { VirtioFeature.version1 }
    var queueMaxSizes: [UInt16] { [16] }
    func readConfig(offset: Int, into data: UnsafeMutableRawBufferPointer) { readConfigBytes([], offset: offset, into: data) }
    func activate(_ activation: VirtioActivation) throws(VirtioDeviceError) { queue = activation.queues[0] }
    func reset() { queue = nil }

    func processQueue(_ index: Int) throws(VirtioDeviceError) -> QueueWork {
        guard var queue else { return .finished }
        defer { self.queue = queue }
        return try queue.drain(driver.memory) { chain throws(VirtioDeviceError) in
            served += 1
            if served < limit { try? driver.publishHead(chain.head, queue: 0, notify: false) }
            return 0
        }.work
    }
}
