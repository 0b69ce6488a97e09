#if canImport(Glibc)
import Glibc
#endif
import FuzzSupport
import Memory
import Sys
@testable import Virtio

// virtio-vsock packet handling over a fuzzer-chosen guest memory image: the real VsockDevice and
// its hybrid muxer, with real Unix sockets on the host side. Guest-initiated streams to port
// 5000 reach a listener of the harness (`<uds>_5000`); host-initiated ones come from clients
// that send `CONNECT <port>`. Input: a `DeviceScript` for 3 queues; device ops: 0 host socket
// events, 1 accept what reached the port-5000 listener and write `b % 4096` bytes of guest RAM
// (from `c`) into host socket `a`, 2 close host socket `a`, 3 connect a client for port `c`.

private let udsPath = "/tmp/kvmrun-fuzz-vsock-\(getpid()).sock"
private let guest = FuzzGuest()
private let device = try! VsockDevice(cid: 3, udsPath: udsPath)
private let transport = guest.transport(for: device)
private let listener: FileDescriptor = {
    let path = udsPath + "_5000"
    let socket = try! UnixStream.listen(path: path)
    SocketFiles.register(path)  // removed at exit, as the device's own socket is
    return socket
}()
private nonisolated(unsafe) var hostSockets: [FileDescriptor] = []

@_cdecl("LLVMFuzzerTestOneInput")
func fuzzVsock(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzBytes(data, size)
    let script = DeviceScript(&input, queueCount: 3)
    guest.load(image: input.rest())
    script.play(transport, on: guest) { op in
        switch op.kind % 4 {
        case 0:
            do {
                // As the VMM's event loop does: a budget's worth at most, then a notify later.
                if try device.processHostEvents() == .budgetExhausted {
                    transport.notifyLater(queue: VsockDevice.txQueue)
                }
            } catch {
                transport.fail("host socket event: \(error)")  // as the VMM's event loop does
            }
        case 1:
            while hostSockets.count < 8, let stream = UnixStream.accept(listener) { hostSockets.append(stream) }
            guard !hostSockets.isEmpty else { break }
            let length = Int(op.b % 4096)
            let start = UInt64(op.c) % (FuzzGuest.ramSize - UInt64(length))
            if let bytes = try? guest.memory.read(count: length, at: GuestAddress(start)) {
                _ = UnixStream.write(hostSockets[Int(op.a) % hostSockets.count], bytes[...])
            }
        case 2:
            guard !hostSockets.isEmpty else { break }
            hostSockets.remove(at: Int(op.a) % hostSockets.count).close()
        default:
            guard hostSockets.count < 8, let client = try? UnixStream.connect(path: udsPath) else { break }
            _ = UnixStream.write(client, Array("CONNECT \(op.c)\n".utf8)[...])
            hostSockets.append(client)
        }
    }
    // Nothing carries over to the next input: the driver resets the device (the muxer closes
    // its streams), the harness closes its sockets and whatever reached the listener.
    transport.writeRegister(MMIOTransport.Register.status, 0)
    for socket in hostSockets { socket.close() }
    hostSockets.removeAll()
    while let stream = UnixStream.accept(listener) { stream.close() }
    _ = try? device.processHostEvents()
    return 0
}
