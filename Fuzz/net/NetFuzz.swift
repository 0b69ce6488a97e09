import FuzzSupport
import Memory
import Virtio

// virtio-net over a fuzzer-chosen guest memory image: transmit chains (header + frame, sent with
// writev to a socketpair standing in for the tap) and receive (frames the input injects,
// delivered into receive chains, merged or not). Input: a `DeviceScript` for 2 queues; device
// ops: 0 injects a frame of `b % 2048` bytes copied from guest RAM at `c % 64 KiB` (at least the
// 12-byte header), 1 says the backend is readable, 2 reads what the device sent.

private let guest = FuzzGuest()
private let backend = SocketPairBackend()
private let device = NetDevice(backend: backend, mac: [2, 0, 0, 0, 0, 1], logger: .discarding)
private let transport = guest.transport(for: device)
private let connected: Void = device.connect(NoWatch())

@_cdecl("LLVMFuzzerTestOneInput")
func fuzzNet(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    _ = connected
    var input = FuzzBytes(data, size)
    let script = DeviceScript(&input, queueCount: 2)
    guest.load(image: input.rest())
    backend.drainDeviceSide()
    script.play(transport, on: guest) { op in
        switch op.kind % 3 {
        case 0:
            let length = max(12, Int(op.b % 2048))
            let start = UInt64(op.c) % (FuzzGuest.ramSize - UInt64(length))
            if let frame = try? guest.memory.read(count: length, at: GuestAddress(start)) { backend.inject(frame) }
        case 1:
            do {
                try device.backendReadable()
            } catch {
                transport.fail("receive: \(error)")  // as the VMM's event loop does
            }
        default:
            backend.drain()
        }
    }
    backend.drain()
    return 0
}
