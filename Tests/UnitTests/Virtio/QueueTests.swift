import Memory
import Testing
import Virtio
import VirtioTesting

/// Malicious and buggy drivers against the split virtqueue, through virtio-rng: every case must
/// end with the device in NEEDS_RESET and a logged reason, never a crash or a hang.
@Suite("Virtqueue validation")
struct QueueTests {
    func ready() throws -> DriverDouble {
        let driver = try DriverDouble(queueSize: 16)
        _ = driver.attach(RngDevice())
        driver.initialize()
        #expect(!driver.needsReset)
        return driver
    }

    @Test("a well-formed chain is served: the buffer is filled and a used element comes back")
    func wellFormed() throws {
        let driver = try ready()
        let buffer = try driver.allocate(64, bytes: [UInt8](repeating: 0, count: 64))
        let head = try driver.publish([.init(address: buffer, length: 64, writable: true)], queue: 0)
        let used = try driver.takeUsed(queue: 0)
        #expect(used.count == 1 && used[0].head == head && used[0].length == 64)
        #expect(try driver.memory.read(count: 64, at: buffer) != [UInt8](repeating: 0, count: 64))
        #expect(driver.line.count == 1)
        #expect(driver.interrupt.pending & VirtioInterrupt.usedBuffer != 0)
    }

    @Test("a descriptor loop is caught")
    func loop() throws {
        let driver = try ready()
        let (table, _, _) = driver.ringAddresses(0)
        let buffer = try driver.allocate(16)
        try driver.writeDescriptor(table: table, slot: 0, address: buffer.raw, length: 16, flags: 1 | 2, next: 1)
        try driver.writeDescriptor(table: table, slot: 1, address: buffer.raw, length: 16, flags: 1 | 2, next: 0)
        try driver.publishHead(0, queue: 0)
        #expect(driver.needsReset)
        #expect(driver.log.last?.contains("loop") == true)
    }

    @Test("a buffer outside guest RAM is refused", arguments: [UInt64(0xFFFF_FFFF_0000), UInt64(16 << 20) - 8, UInt64.max - 4] as [UInt64])
    func outOfRange(address: UInt64) throws {
        let driver = try ready()
        let (table, _, _) = driver.ringAddresses(0)
        try driver.writeDescriptor(table: table, slot: 0, address: address, length: 16, flags: 2, next: 0)
        try driver.publishHead(0, queue: 0)
        #expect(driver.needsReset)
        #expect(try driver.takeUsed(queue: 0).isEmpty)
    }

    @Test("a next index beyond the queue size is refused")
    func nextOutOfRange() throws {
        let driver = try ready()
        let (table, _, _) = driver.ringAddresses(0)
        let buffer = try driver.allocate(16)
        try driver.writeDescriptor(table: table, slot: 0, address: buffer.raw, length: 16, flags: 1 | 2, next: 999)
        try driver.publishHead(0, queue: 0)
        #expect(driver.needsReset)
        #expect(driver.log.last?.contains("out of range") == true)
    }

    @Test("a head index beyond the queue size is refused")
    func headOutOfRange() throws {
        let driver = try ready()
        try driver.publishHead(40, queue: 0)
        #expect(driver.needsReset)
    }

    @Test("a device-readable descriptor after a writable one is refused (wrong direction)")
    func wrongDirection() throws {
        let driver = try ready()
        let buffer = try driver.allocate(32)
        try driver.publish([.init(address: buffer, length: 16, writable: true),
                            .init(address: buffer + 16, length: 16, writable: false)], queue: 0)
        #expect(driver.needsReset)
        #expect(driver.log.last?.contains("device-readable after a device-writable") == true)
    }

    @Test("indirect descriptors, never negotiated, are refused")
    func indirect() throws {
        let driver = try ready()
        let (table, _, _) = driver.ringAddresses(0)
        let buffer = try driver.allocate(16)
        try driver.writeDescriptor(table: table, slot: 0, address: buffer.raw, length: 16, flags: 4, next: 0)
        try driver.publishHead(0, queue: 0)
        #expect(driver.needsReset)
    }

    @Test("an available index claiming more buffers than the queue holds is refused")
    func oversizeAvailable() throws {
        let driver = try ready()
        try driver.forceAvailableIndex(200, queue: 0)
        driver.writeRegister(MMIOTransport.Register.queueNotify, 0)
        #expect(driver.needsReset)
    }

    @Test("a chain as long as the queue is fine; the device does not read past it")
    func longChain() throws {
        let driver = try ready()
        var buffers: [DriverDouble.Buffer] = []
        for _ in 0..<16 { buffers.append(.init(address: try driver.allocate(8), length: 8, writable: true)) }
        try driver.publish(buffers, queue: 0)
        #expect(!driver.needsReset)
        #expect(try driver.takeUsed(queue: 0).first?.length == 128)
    }

    @Test("after NEEDS_RESET the device ignores notifications until the driver resets it")
    func quiescentAfterFailure() throws {
        let driver = try ready()
        try driver.publishHead(40, queue: 0)
        #expect(driver.needsReset)
        let buffer = try driver.allocate(8)
        try driver.publish([.init(address: buffer, length: 8, writable: true)], queue: 0)
        #expect(try driver.takeUsed(queue: 0).isEmpty)
        #expect(driver.initialize() & MMIOTransport.Status.driverOK != 0)
        #expect(!driver.needsReset)
    }
}

/// The 2^32-byte cap on a chain (the spec's limit on drivers), counted over aliased buffers.
@Suite("Virtqueue chain length")
struct QueueChainLengthTests {
    /// virtio-rng with 32-entry queues over 258 MiB of guest RAM (mapped, never touched).
    func ready() throws -> DriverDouble {
        let driver = try DriverDouble(memorySize: 258 << 20, queueSize: 32)
        _ = driver.attach(RngDevice())
        driver.initialize()
        return driver
    }

    @Test("16 descriptors of 256 MiB on the same memory (exactly 2^32 bytes) are a valid chain")
    func exactlyFourGiB() throws {
        let driver = try ready()
        let buffer = DriverDouble.Buffer(address: DriverDouble.dataArea, length: 256 << 20, writable: true)
        try driver.publish(Array(repeating: buffer, count: 16), queue: 0)
        #expect(!driver.needsReset)
        #expect(try driver.takeUsed(queue: 0).first?.length == UInt32(RngDevice.maxRequest))
    }

    @Test("one byte more than 2^32 in a chain of aliased buffers is refused: NEEDS_RESET, nothing used")
    func overFourGiB() throws {
        let driver = try ready()
        let buffer = DriverDouble.Buffer(address: DriverDouble.dataArea, length: 256 << 20, writable: true)
        let extra = DriverDouble.Buffer(address: DriverDouble.dataArea, length: 1, writable: true)
        try driver.publish(Array(repeating: buffer, count: 16) + [extra], queue: 0)
        #expect(driver.needsReset)
        #expect(driver.log.last?.contains("more than 2^32 bytes") == true)
        #expect(try driver.takeUsed(queue: 0).isEmpty)
    }
}
