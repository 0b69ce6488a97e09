import CKVM
import Memory

/// What `Queue.drain` did: whether to interrupt the driver, and whether it stopped at its
/// budget with chains possibly left.
public struct Drained: Equatable, Sendable {
    public var notify: Bool
    public var work: QueueWork

    public init(notify: Bool, work: QueueWork) {
        self.notify = notify
        self.work = work
    }
}

/// A split virtqueue (virtio 1.x, 2.7) as plain state; guest memory is passed into each call.
/// Nothing read from the guest is trusted: ring indexes, descriptor indexes, addresses and
/// lengths are checked before use, and a whole chain is validated before any of it is handed to
/// the device. A violation throws `VirtioDeviceError`; the transport then marks the device
/// NEEDS_RESET.
public struct Queue: Sendable {
    static let descriptorSize: UInt64 = 16
    static let flagNext: UInt16 = 1
    static let flagWrite: UInt16 = 2
    static let flagIndirect: UInt16 = 4
    static let availNoInterrupt: UInt16 = 1
    /// The most bytes one chain may describe (virtio 1.x, split virtqueue descriptor table:
    /// "Drivers MUST NOT add a descriptor chain longer than 2^32 bytes in total"). Descriptors
    /// may alias the same guest memory, so without this cap a chain of a few hundred descriptors
    /// could claim a terabyte.
    public static let maxChainBytes: UInt64 = 1 << 32

    public let maxSize: UInt16
    public var size: UInt16
    public var ready = false
    public var descriptorTable = GuestAddress(0)
    public var availableRing = GuestAddress(0)
    public var usedRing = GuestAddress(0)
    public private(set) var nextAvailable: UInt16 = 0
    public private(set) var nextUsed: UInt16 = 0

    public init(maxSize: UInt16) {
        self.maxSize = maxSize
        self.size = maxSize
    }

    /// Back to the state after device reset.
    public mutating func reset() {
        self = Queue(maxSize: maxSize)
    }

    /// Checks size and ring placement once, at activation.
    public func validate(in memory: GuestMemory) throws(VirtioDeviceError) {
        guard ready else { throw VirtioDeviceError("queue is not ready") }
        guard size > 0, size <= maxSize, size & (size - 1) == 0 else {
            throw VirtioDeviceError("queue size \(size) is not a power of two in 1...\(maxSize)")
        }
        let count = UInt64(size)
        let areas: [(String, GuestAddress, UInt64, UInt64)] = [
            ("descriptor table", descriptorTable, Queue.descriptorSize * count, 16),
            ("available ring", availableRing, 6 + 2 * count, 2),
            ("used ring", usedRing, 6 + 8 * count, 4),
        ]
        for (name, address, length, alignment) in areas {
            guard address.raw % alignment == 0 else {
                throw VirtioDeviceError("\(name) at \(address) is not \(alignment)-byte aligned")
            }
            guard memory.isValid(address, length: length) else {
                throw VirtioDeviceError("\(name) at \(address)+\(length) is outside guest RAM")
            }
        }
    }

    /// The next available descriptor chain, validated whole, or nil when the driver has made
    /// nothing new available.
    public mutating func pop(_ memory: GuestMemory) throws(VirtioDeviceError) -> DescriptorChain? {
        let availableIndex = try load(UInt16.self, memory, availableRing + 2, "available ring index")
        let pending = availableIndex &- nextAvailable
        if pending == 0 { return nil }
        guard pending <= size else {
            throw VirtioDeviceError("driver published \(pending) buffers in a queue of \(size)")
        }
        // Read the ring entry only after the index (x86 keeps loads ordered; the fence keeps the
        // compiler from hoisting it).
        kvmrun_memory_fence()
        let slot = UInt64(nextAvailable % size)
        let head = try load(UInt16.self, memory, availableRing + 4 + 2 * slot, "available ring entry")
        let chain = try readChain(head: head, memory)
        nextAvailable &+= 1
        return chain
    }

    /// Puts chain `head` on the used ring with `length` bytes written by the device.
    public mutating func addUsed(_ memory: GuestMemory, head: UInt16, length: UInt32) throws(VirtioDeviceError) {
        guard head < size else { throw VirtioDeviceError("used element head \(head) out of range") }
        let slot = UInt64(nextUsed % size)
        let element = usedRing + 4 + 8 * slot
        try store(UInt32(head), memory, element, "used ring element")
        try store(length, memory, element + 4, "used ring element")
        // The element must be visible before the index that publishes it.
        kvmrun_memory_fence()
        nextUsed &+= 1
        try store(nextUsed, memory, usedRing + 2, "used ring index")
    }

    /// Puts several chains on the used ring and publishes them with one index update, so the
    /// driver sees all of them or none (a frame spread over several receive buffers).
    public mutating func addUsed(_ memory: GuestMemory, elements: [(head: UInt16, length: UInt32)]) throws(VirtioDeviceError) {
        for (offset, element) in elements.enumerated() {
            guard element.head < size else { throw VirtioDeviceError("used element head \(element.head) out of range") }
            let slot = UInt64((nextUsed &+ UInt16(truncatingIfNeeded: offset)) % size)
            let address = usedRing + 4 + 8 * slot
            try store(UInt32(element.head), memory, address, "used ring element")
            try store(element.length, memory, address + 4, "used ring element")
        }
        kvmrun_memory_fence()
        nextUsed &+= UInt16(truncatingIfNeeded: elements.count)
        try store(nextUsed, memory, usedRing + 2, "used ring index")
    }

    /// Chains one wake-up serves at most before it yields (`QueueWork.budgetExhausted`): a
    /// driver on another vCPU that keeps publishing must not keep the event loop to itself.
    public static let defaultBudget = 64

    /// Serves available chains in ring order, at most `budget` of them: `serve` handles one and
    /// returns how many bytes it wrote into it, which goes into the used ring. The first error
    /// stops the drain and propagates (the transport then sets NEEDS_RESET).
    public mutating func drain(_ memory: GuestMemory, budget: Int = Queue.defaultBudget,
                               _ serve: (DescriptorChain) throws(VirtioDeviceError) -> UInt32) throws(VirtioDeviceError) -> Drained {
        var used = 0
        while used < budget, let chain = try pop(memory) {
            let length = try serve(chain)
            try addUsed(memory, head: chain.head, length: length)
            used += 1
        }
        return Drained(notify: used > 0 && !interruptsSuppressed(memory),
                       work: used < budget ? .finished : .budgetExhausted)
    }

    /// True when the driver asked not to be interrupted for used buffers.
    public func interruptsSuppressed(_ memory: GuestMemory) -> Bool {
        // The used index written before must be visible before the flag is read (store→load
        // order, which x86 does not keep without a fence): the driver clears the flag and then
        // reads the index, and one of the two sides must see the other's write.
        kvmrun_memory_fence()
        let flags = (try? memory.load(UInt16.self, at: availableRing)) ?? 0
        return flags & Queue.availNoInterrupt != 0
    }

    /// Walks and checks a chain: indexes in range, no loops (at most `size` descriptors), every
    /// buffer inside guest RAM, no indirect descriptors (not negotiated), device-writable
    /// descriptors only after the readable ones, at most `maxChainBytes` in all.
    func readChain(head: UInt16, _ memory: GuestMemory) throws(VirtioDeviceError) -> DescriptorChain {
        // One view of the whole table (checked at activation, checked again here): a
        // descriptor is then one 16-byte copy, not four lookups of guest RAM.
        let length = Queue.descriptorSize * UInt64(size)
        guard let region = memory.region(containing: descriptorTable, length: length) else {
            throw VirtioDeviceError("descriptor table at \(descriptorTable)+\(length) is outside guest RAM")
        }
        // SAFETY: region.contains() checked the table's `length` bytes lie inside the region, whose
        // mapping lives as long as `memory`, which the caller holds for this call; the view
        // does not outlive walkChain.
        let base = UnsafeRawPointer(bitPattern: region.hostAddress)!.advanced(by: Int(descriptorTable.raw - region.guestBase.raw))
        return try walkChain(head: head, table: UnsafeRawBufferPointer(start: base, count: Int(length)), memory)
    }

    /// `readChain` over a host view of the descriptor table (`size` entries of 16 bytes).
    private func walkChain(head: UInt16, table: UnsafeRawBufferPointer, _ memory: GuestMemory) throws(VirtioDeviceError) -> DescriptorChain {
        var descriptors: [Descriptor] = []
        var index = head
        var sawWritable = false
        var total: UInt64 = 0  // at most size (2^15) descriptors of < 2^32 bytes: no overflow
        while true {
            guard index < size else {
                throw VirtioDeviceError("descriptor index \(index) out of range (queue size \(size))")
            }
            guard descriptors.count < Int(size) else {
                throw VirtioDeviceError("descriptor chain from \(head) is longer than the queue (loop?)")
            }
            // Copied once, then decoded from the copy: the guest may rewrite the entry meanwhile,
            // and every field is used as it was copied (le64 addr, le32 len, le16 flags, le16 next).
            var entry: (UInt64, UInt64) = (0, 0)
            let offset = Int(Queue.descriptorSize) * Int(index)
            // SAFETY: index < size, so the 16 bytes at offset lie inside the table view; the copy
            // goes into the local tuple of the same size.
            withUnsafeMutableBytes(of: &entry) { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: table[offset..<(offset + 16)])) }
            let address = UInt64(littleEndian: entry.0)
            let word = UInt64(littleEndian: entry.1)
            let length = UInt32(truncatingIfNeeded: word)
            let flags = UInt16(truncatingIfNeeded: word >> 32)
            let next = UInt16(truncatingIfNeeded: word >> 48)
            guard flags & Queue.flagIndirect == 0 else {
                throw VirtioDeviceError("descriptor \(index) is indirect, which was not negotiated")
            }
            let writable = flags & Queue.flagWrite != 0
            if writable {
                sawWritable = true
            } else if sawWritable {
                throw VirtioDeviceError("descriptor \(index) is device-readable after a device-writable one")
            }
            guard memory.isValid(GuestAddress(address), length: UInt64(length)) else {
                throw VirtioDeviceError("descriptor \(index) buffer 0x\(String(address, radix: 16))+\(length) is outside guest RAM")
            }
            total += UInt64(length)
            guard total <= Queue.maxChainBytes else {
                throw VirtioDeviceError("descriptor chain from \(head) describes more than 2^32 bytes (descriptor \(index) reaches \(total))")
            }
            descriptors.append(Descriptor(address: GuestAddress(address), length: length, isWriteOnly: writable))
            guard flags & Queue.flagNext != 0 else { break }
            index = next
        }
        return DescriptorChain(head: head, descriptors: descriptors)
    }

    private func load<T: BitwiseCopyable>(_ type: T.Type, _ memory: GuestMemory, _ address: GuestAddress,
                                          _ what: String) throws(VirtioDeviceError) -> T {
        do {
            return try memory.load(T.self, at: address)
        } catch {
            throw VirtioDeviceError("\(what) at \(address) is outside guest RAM")
        }
    }

    private func store<T: BitwiseCopyable>(_ value: T, _ memory: GuestMemory, _ address: GuestAddress,
                                           _ what: String) throws(VirtioDeviceError) {
        do {
            try memory.store(value, at: address)
        } catch {
            throw VirtioDeviceError("\(what) at \(address) is outside guest RAM")
        }
    }
}
