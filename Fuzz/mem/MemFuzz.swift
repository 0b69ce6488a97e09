import FuzzSupport
import Memory
import Virtio

// virtio-mem requests (PLUG, UNPLUG, UNPLUG_ALL, STATE, unknown types) over a fuzzer-chosen
// guest memory image: a fresh MemDevice per input (plug state survives resets, so a shared one
// would carry state from input to input) over the 1 MiB hotplug region of `FuzzGuest`.
// Input: u8 block size (4 KiB << (n % 9)), u16 requested blocks, then a `DeviceScript` for one
// queue; device op 0 sets the requested size to `c` bytes (refused sizes are rejected inputs).

private let guest = FuzzGuest()

@_cdecl("LLVMFuzzerTestOneInput")
func fuzzMem(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzBytes(data, size)
    let blockSize = UInt64(4096) << (input.u8() % 9)
    let requested = min(UInt64(input.u16()) * blockSize, FuzzGuest.hotplugSize)
    guard let device = try? MemDevice(memory: guest.memory, address: FuzzGuest.hotplugBase,
                                      regionSize: FuzzGuest.hotplugSize, blockSize: blockSize,
                                      requestedSize: requested) else { return 0 }
    let transport = guest.transport(for: device)
    let script = DeviceScript(&input, queueCount: 1)
    guest.load(image: input.rest())
    script.play(transport, on: guest) { op in
        if (try? device.setRequestedSize(UInt64(op.c))) != nil { transport.configChanged() }
    }
    return 0
}
