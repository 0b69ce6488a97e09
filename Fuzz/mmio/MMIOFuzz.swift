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
    for _ in 0..<256 where !input.isAtEnd {
        let kind = input.u8() % 4
        let width = 1 + Int(input.u8() % 8)
        let offset = Int(input.u16() % 0x1000)
        let value = input.u64()
        switch kind {
        case 0:
            _ = transport.readRegister(offset, width: width)
        case 1:
            transport.writeRegister(offset, value, width: width)
        case 2:
            try? guest.memory.store(value, at: GuestAddress(UInt64(offset) * 8))
        default:
            transport.notify(queue: Int(value % 4))
        }
        guest.followRequeues(transport)  // the notifies a device that stopped at its budget asked for
    }
    transport.writeRegister(MMIOTransport.Register.status, 0)  // the drive is shared: reset it
    return 0
}
