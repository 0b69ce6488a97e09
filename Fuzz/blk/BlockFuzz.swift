import FuzzSupport
import Virtio

// virtio-blk request parsing and handling over a fuzzer-chosen guest memory image: a real
// BlockDevice on a 64 KiB scratch image (read-write, or read-only when the first input byte is
// odd), driven through its MMIO transport. Input: u8 device choice, then a `DeviceScript`.

private let guest = FuzzGuest()
private let drives = [false, true].map { readOnly in
    try! withScratchFile(readOnly ? "blk-ro" : "blk", size: 64 * 1024) { path in
        try BlockDevice(path: path, readOnly: readOnly, id: "fuzz-drive-id-longer-than-20")
    }
}
private let transports = drives.map { guest.transport(for: $0) }

@_cdecl("LLVMFuzzerTestOneInput")
func fuzzBlock(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzBytes(data, size)
    let transport = transports[Int(input.u8() & 1)]
    let script = DeviceScript(&input, queueCount: 1)
    guest.load(image: input.rest())
    script.play(transport, on: guest)
    return 0
}
