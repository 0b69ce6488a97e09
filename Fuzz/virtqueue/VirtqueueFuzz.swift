import FuzzSupport
import Memory
import Virtio

// Descriptor-chain validation: the split virtqueue (`Queue`) over a fuzzer-chosen guest memory
// image, without a device. Input (little-endian): u16 queue size, u8 flags (bit 0: not ready,
// bit 1: u64 addresses), descriptor table, available ring and used ring addresses (u16, or u64),
// u8 op count, ops of 8 bytes (u8 kind, u8 a, u16 b, u32 c), then the RAM image.
// Every chain `pop` returns is checked against what validation promises; a broken promise traps.

private let guest = FuzzGuest()

@_cdecl("LLVMFuzzerTestOneInput")
func fuzzVirtqueue(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzBytes(data, size)
    var queue = Queue(maxSize: 64)
    queue.size = input.u16()
    let flags = input.u8()
    queue.ready = flags & 1 == 0
    func address() -> GuestAddress { GuestAddress(flags & 2 != 0 ? input.u64() : UInt64(input.u16())) }
    queue.descriptorTable = address()
    queue.availableRing = address()
    queue.usedRing = address()
    let ops = (0..<min(Int(input.u8()), 64)).map { _ in (kind: input.u8(), a: input.u8(), b: input.u16(), c: input.u32()) }
    guest.load(image: input.rest())
    let memory = guest.memory
    do {
        try queue.validate(in: memory)
    } catch {
        return 0
    }
    var chains: [DescriptorChain] = []
    func take() throws(VirtioDeviceError) {
        guard let chain = try queue.pop(memory) else { return }
        check(chain, queue.size, memory)
        if chains.count < 64 { chains.append(chain) }
    }
    do throws(VirtioDeviceError) {
        if ops.isEmpty {
            while let chain = try queue.pop(memory) { check(chain, queue.size, memory) }  // at most 2^16
        }
        for op in ops {
            let chain = chains.isEmpty ? nil : chains[Int(op.a) % chains.count]
            switch op.kind % 8 {
            case 0:
                try take()
            case 1:
                guard let chain else { break }
                let bytes = try chain.readBytes(memory, offset: Int(op.b), limit: Int(op.c % 0x2_0000))
                precondition(bytes.count <= max(0, chain.readableLength - Int(op.b)), "readBytes returned too much")
            case 2:
                guard let chain else { break }
                let bytes = [UInt8](repeating: op.a, count: Int(op.b % 0x4000))
                let written = try chain.writeBytes(bytes, memory, offset: Int(op.c % 0x2_0000))
                precondition(written <= bytes.count, "writeBytes wrote more than it was given")
            case 3:
                try queue.addUsed(memory, head: chain?.head ?? op.b, length: op.c)
            case 4:
                try queue.addUsed(memory, elements: chains.prefix(Int(op.a % 8)).map { ($0.head, op.c) })
            case 5:
                // A budget of 1 + a % 64 chains (a used ring over the available index feeds
                // itself: the budget is what ends the drain).
                let size = queue.size
                let budget = 1 + Int(op.a % 64)
                var served = 0
                let drained = try queue.drain(memory, budget: budget) { chain throws(VirtioDeviceError) in
                    check(chain, size, memory)
                    served += 1
                    return UInt32(truncatingIfNeeded: chain.writableLength)
                }
                precondition(served <= budget, "drain served \(served) chains, budget \(budget)")
                precondition((drained.work == .budgetExhausted) == (served == budget), "drain's work does not match what it served")
                precondition(!drained.notify || served > 0, "drain asks for an interrupt without used buffers")
            case 6:
                _ = queue.interruptsSuppressed(memory)
            default:
                // The driver publishes: a new available index.
                try? memory.store(op.b, at: queue.availableRing + 2)
            }
        }
    } catch {
        // A rejected chain or ring: the device would go to NEEDS_RESET. Not a finding.
    }
    return 0
}

/// What `Queue.pop` promises about a chain it returns.
private func check(_ chain: DescriptorChain, _ size: UInt16, _ memory: GuestMemory) {
    precondition(chain.head < size, "head \(chain.head) outside the queue")
    precondition(!chain.descriptors.isEmpty && chain.descriptors.count <= Int(size), "chain length")
    var sawWritable = false
    for descriptor in chain.descriptors {
        precondition(memory.isValid(descriptor.address, length: UInt64(descriptor.length)), "buffer outside RAM")
        precondition(!(sawWritable && !descriptor.isWriteOnly), "readable after writable")
        sawWritable = sawWritable || descriptor.isWriteOnly
    }
}
