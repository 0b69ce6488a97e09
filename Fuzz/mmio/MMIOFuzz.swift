import FuzzSupport
import Memory
import Virtio

// The virtio-mmio transport's register interface: a sequence of MMIO accesses, as vCPU exits
// would bring them, to an MMIOTransport with a real device behind it (rng, mem or blk, chosen by
// the first byte). Input: u8 device, then accesses of 12 bytes: u8 kind (0 read, 1 write,
// 2 store `value` into guest RAM at `offset * 8`, 3 a queue notify through the ioeventfd path),
// u8 width (1 + n % 8 bytes), u16 offset in the 4 KiB window, u64 value. Guest RAM starts zeroed.

private let guest = FuzzGuest()
private let drive = try! withScratchFile("mmio-blk", size: 16 * 1024) { path in try BlockDevice(path: path, id: "fuzz") }

@_cdecl("LLVMFuzzerTestOneInput")
func fuzzMMIO(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzBytes(data, size)
    let device: any VirtioDevice
    switch input.u8() % 3 {
    case 0: device = RngDevice()
    case 1:
        guard let mem = try? MemDevice(memory: guest.memory, address: FuzzGuest.hotplugBase,
                                       regionSize: FuzzGuest.hotplugSize, blockSize: 4096, requestedSize: 1 << 16) else { return 0 }
        device = mem
    default: device = drive
    }
    let transport = guest.transport(for: device)
    guest.load(image: UnsafeRawBufferPointer(start: nil, count: 0))
    var shadow = RegisterShadow(maxSizes: device.queueMaxSizes)
    for _ in 0..<256 where !input.isAtEnd {
        let kind = input.u8() % 4
        let width = 1 + Int(input.u8() % 8)
        let offset = Int(input.u16() % 0x1000)
        let value = input.u64()
        switch kind {
        case 0:
            _ = transport.readRegister(offset, width: width)
        case 1:
            if offset == MMIOTransport.Register.queueNotify, !shadow.mayNotify(guest.memory) { break }
            shadow.record(offset: offset, width: width, value: value)
            transport.writeRegister(offset, value, width: width)
        case 2:
            try? guest.memory.store(value, at: GuestAddress(UInt64(offset) * 8))
        default:
            if shadow.mayNotify(guest.memory) { transport.notify(queue: Int(value % 4)) }
        }
    }
    transport.writeRegister(MMIOTransport.Register.status, 0)  // the drive is shared: reset it
    return 0
}

/// The queue registers the driver wrote, for the temporary self-feeding guard.
private struct RegisterShadow {
    let maxSizes: [UInt16]
    var select = 0
    var queues: [QueuePlacement]

    init(maxSizes: [UInt16]) {
        self.maxSizes = maxSizes
        queues = maxSizes.map { QueuePlacement(size: $0, descriptors: 0, available: 0, used: 0) }
    }

    func mayNotify(_ memory: GuestMemory) -> Bool { !deviceCouldFeedItself(queues, memory) }

    mutating func record(offset: Int, width: Int, value: UInt64) {
        typealias R = MMIOTransport.Register
        guard width == 4, offset % 4 == 0 else { return }
        let word = value & 0xFFFF_FFFF
        if offset == R.queueSelect { select = Int(word) }
        if offset == R.status && word == 0 { self = RegisterShadow(maxSizes: maxSizes) }
        guard select < queues.count else { return }
        func low(_ old: UInt64) -> UInt64 { old & ~0xFFFF_FFFF | word }
        func high(_ old: UInt64) -> UInt64 { old & 0xFFFF_FFFF | word << 32 }
        switch offset {
        case R.queueSize: queues[select].size = UInt16(truncatingIfNeeded: word)
        case R.queueDescriptorLow: queues[select].descriptors = low(queues[select].descriptors)
        case R.queueDescriptorHigh: queues[select].descriptors = high(queues[select].descriptors)
        case R.queueDriverLow: queues[select].available = low(queues[select].available)
        case R.queueDriverHigh: queues[select].available = high(queues[select].available)
        case R.queueDeviceLow: queues[select].used = low(queues[select].used)
        case R.queueDeviceHigh: queues[select].used = high(queues[select].used)
        default: break
        }
    }
}
