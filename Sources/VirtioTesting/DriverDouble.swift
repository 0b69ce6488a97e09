import Devices
import Memory
import Virtio

/// A test double that plays the guest's virtio driver against an `MMIOTransport`, so devices can
/// be unit-tested without a guest: it owns a small guest RAM, negotiates features through the
/// registers, lays out split virtqueues, publishes descriptor chains and reads the used ring.
/// It can also write malformed rings (loops, out-of-range buffers) to test a device's defences.
public final class DriverDouble: @unchecked Sendable {
    public struct Buffer {
        public var address: GuestAddress
        public var length: UInt32
        public var writable: Bool
        public init(address: GuestAddress, length: UInt32, writable: Bool) {
            self.address = address
            self.length = length
            self.writable = writable
        }
    }

    /// Records interrupts the device raises.
    public final class CountingLine: InterruptLine, @unchecked Sendable {
        public private(set) var count = 0
        public init() {}
        public func trigger() { count += 1 }
    }

    public static let ringArea = GuestAddress(0x10000)
    public static let dataArea = GuestAddress(0x100000)

    public let memory: GuestMemory
    public let line = CountingLine()
    public let interrupt: VirtioInterrupt
    public private(set) var transport: MMIOTransport!
    /// What the transport and the device behind it logged, oldest first.
    public var log: [String] { logRecord.messages }
    public let logRecord = LogRecord()
    public let queueSize: UInt16
    private var availableIndex: [UInt16] = []
    private var lastUsed: [UInt16] = []
    private var nextFreeDescriptor: [UInt16] = []
    private var dataCursor: UInt64 = 0

    /// Guest RAM of `memorySize` bytes at 0; queues of `queueSize` entries.
    public init(memorySize: UInt64 = 16 << 20, queueSize: UInt16 = 16) throws {
        memory = try GuestMemory(layout: [(GuestAddress(0), memorySize)])
        interrupt = VirtioInterrupt(line: line)
        self.queueSize = queueSize
    }

    /// Builds the transport for `device` (call once, before `initialize`). `requeue` is the
    /// transport's way to ask for another notify after a device stopped at its budget (none:
    /// the test notifies again itself).
    public func attach(_ device: any VirtioDevice, requeue: (@Sendable (Int) -> Void)? = nil) -> MMIOTransport {
        let transport = MMIOTransport(device: device, memory: memory, interrupt: interrupt, name: "test-device",
                                      requeue: requeue, logger: logRecord.logger)
        self.transport = transport
        return transport
    }

    // MARK: registers

    public func readRegister(_ offset: Int) -> UInt32 {
        var value: UInt32 = 0
        withUnsafeMutableBytes(of: &value) { transport.read(offset: UInt64(offset), data: $0) }
        return value
    }

    public func writeRegister(_ offset: Int, _ value: UInt32) {
        withUnsafeBytes(of: value) { transport.write(offset: UInt64(offset), data: $0) }
    }

    /// Reads `count` bytes of the device config space.
    public func readConfig(offset: Int, count: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        bytes.withUnsafeMutableBytes { transport.read(offset: UInt64(MMIOTransport.Register.config + offset), data: $0) }
        return bytes
    }

    public var deviceFeatures: UInt64 {
        writeRegister(MMIOTransport.Register.deviceFeaturesSelect, 0)
        let low = UInt64(readRegister(MMIOTransport.Register.deviceFeatures))
        writeRegister(MMIOTransport.Register.deviceFeaturesSelect, 1)
        return low | UInt64(readRegister(MMIOTransport.Register.deviceFeatures)) << 32
    }

    public var status: UInt32 { readRegister(MMIOTransport.Register.status) }

    /// The driver's initialization sequence (virtio 1.x, 3.1.1): reset, ACKNOWLEDGE, DRIVER,
    /// features (`accept` ∩ offered, or exactly `features` when given), FEATURES_OK, queues,
    /// DRIVER_OK. Returns the final status.
    @discardableResult
    public func initialize(accepting accept: UInt64 = .max, exactFeatures: UInt64? = nil) -> UInt32 {
        typealias R = MMIOTransport.Register
        typealias S = MMIOTransport.Status
        writeRegister(R.status, 0)
        writeRegister(R.status, S.acknowledge)
        writeRegister(R.status, S.acknowledge | S.driver)
        let features = exactFeatures ?? (deviceFeatures & accept)
        writeRegister(R.driverFeaturesSelect, 0)
        writeRegister(R.driverFeatures, UInt32(truncatingIfNeeded: features))
        writeRegister(R.driverFeaturesSelect, 1)
        writeRegister(R.driverFeatures, UInt32(truncatingIfNeeded: features >> 32))
        writeRegister(R.status, S.acknowledge | S.driver | S.featuresOK)
        guard status & S.featuresOK != 0 else { return status }
        let count = transport.queueCount
        availableIndex = Array(repeating: 0, count: count)
        lastUsed = Array(repeating: 0, count: count)
        nextFreeDescriptor = Array(repeating: 0, count: count)
        for index in 0..<count {
            let (descriptors, available, used) = ringAddresses(index)
            writeRegister(R.queueSelect, UInt32(index))
            writeRegister(R.queueSize, UInt32(queueSize))
            writeRegister(R.queueDescriptorLow, UInt32(truncatingIfNeeded: descriptors.raw))
            writeRegister(R.queueDescriptorHigh, UInt32(truncatingIfNeeded: descriptors.raw >> 32))
            writeRegister(R.queueDriverLow, UInt32(truncatingIfNeeded: available.raw))
            writeRegister(R.queueDriverHigh, UInt32(truncatingIfNeeded: available.raw >> 32))
            writeRegister(R.queueDeviceLow, UInt32(truncatingIfNeeded: used.raw))
            writeRegister(R.queueDeviceHigh, UInt32(truncatingIfNeeded: used.raw >> 32))
            writeRegister(R.queueReady, 1)
        }
        writeRegister(R.status, S.acknowledge | S.driver | S.featuresOK | S.driverOK)
        return status
    }

    /// Descriptor table, available ring and used ring of queue `index` (4 KiB-aligned, each queue
    /// in its own 16 KiB).
    public func ringAddresses(_ index: Int) -> (GuestAddress, GuestAddress, GuestAddress) {
        let base = DriverDouble.ringArea + UInt64(index) * 0x4000
        return (base, base + 0x1000, base + 0x2000)
    }

    // MARK: buffers

    /// Allocates `length` bytes of guest data memory (8-byte aligned), filled with `bytes` if given.
    public func allocate(_ length: Int, bytes: [UInt8] = []) throws -> GuestAddress {
        let address = DriverDouble.dataArea + dataCursor
        dataCursor += UInt64((length + 7) & ~7)
        if !bytes.isEmpty { try memory.write(bytes, at: address) }
        return address
    }

    /// Writes a chain of `buffers` into the descriptor table, publishes it on queue `index`'s
    /// available ring and notifies the device. Returns the head index.
    @discardableResult
    public func publish(_ buffers: [Buffer], queue index: Int, notify: Bool = true) throws -> UInt16 {
        let (table, available, _) = ringAddresses(index)
        let head = nextFreeDescriptor[index]
        for (offset, buffer) in buffers.enumerated() {
            let slot = (head &+ UInt16(offset)) % queueSize
            let next = (slot &+ 1) % queueSize
            let last = offset == buffers.count - 1
            let flags: UInt16 = (last ? 0 : 1) | (buffer.writable ? 2 : 0)
            try writeDescriptor(table: table, slot: slot, address: buffer.address.raw, length: buffer.length,
                                flags: flags, next: next)
        }
        nextFreeDescriptor[index] = (head &+ UInt16(buffers.count)) % queueSize
        try publishHead(head, queue: index, available: available, notify: notify)
        return head
    }

    /// Writes one raw descriptor (for malformed chains).
    public func writeDescriptor(table: GuestAddress, slot: UInt16, address: UInt64, length: UInt32,
                                flags: UInt16, next: UInt16) throws {
        let entry = table + UInt64(slot) * 16
        try memory.store(address, at: entry)
        try memory.store(length, at: entry + 8)
        try memory.store(flags, at: entry + 12)
        try memory.store(next, at: entry + 14)
    }

    /// Puts `head` on the available ring, bumps the index and (optionally) notifies.
    public func publishHead(_ head: UInt16, queue index: Int, available: GuestAddress? = nil, notify: Bool = true) throws {
        let ring = available ?? ringAddresses(index).1
        let slot = UInt64(availableIndex[index] % queueSize)
        try memory.store(head, at: ring + 4 + 2 * slot)
        availableIndex[index] &+= 1
        try memory.store(availableIndex[index], at: ring + 2)
        if notify { writeRegister(MMIOTransport.Register.queueNotify, UInt32(index)) }
    }

    /// Sets the available ring's index directly (to claim more buffers than exist).
    public func forceAvailableIndex(_ value: UInt16, queue index: Int) throws {
        availableIndex[index] = value
        try memory.store(value, at: ringAddresses(index).1 + 2)
    }

    /// Used elements (head, length) the device added since the last call.
    public func takeUsed(queue index: Int) throws -> [(head: UInt16, length: UInt32)] {
        let used = ringAddresses(index).2
        let deviceIndex: UInt16 = try memory.load(at: used + 2)
        var result: [(UInt16, UInt32)] = []
        while lastUsed[index] != deviceIndex {
            let element = used + 4 + 8 * UInt64(lastUsed[index] % queueSize)
            let head: UInt32 = try memory.load(at: element)
            let length: UInt32 = try memory.load(at: element + 4)
            result.append((UInt16(truncatingIfNeeded: head), length))
            lastUsed[index] &+= 1
        }
        return result
    }

    /// Whether the device has set DEVICE_NEEDS_RESET.
    public var needsReset: Bool { status & MMIOTransport.Status.needsReset != 0 }
}
