#if canImport(Glibc)
import Glibc
#endif
import Memory
@testable import Virtio
import VirtioTesting

/// Plays the guest's vsock driver against a `VsockDevice` through `DriverDouble`: offers rx
/// buffers, sends tx packets, and decodes what the device put in the rx buffers.
final class VsockGuest {
    static let cid: UInt64 = 3
    let driver: DriverDouble
    let device: VsockDevice
    let uds: String
    private var rxBuffers: [UInt16: GuestAddress] = [:]

    init(rxBuffers count: Int = 8, queueSize: UInt16 = 64) throws {
        uds = VsockGuest.temporaryPath("uds")
        device = try VsockDevice(cid: VsockGuest.cid, udsPath: uds)
        driver = try DriverDouble(queueSize: queueSize)
        _ = driver.attach(device)
        driver.initialize()
        try offerRx(count)
    }

    static func temporaryPath(_ name: String) -> String {
        let unique = UInt64.random(in: 0..<UInt64.max)
        return "/tmp/kvmrun-vsock-\(getpid())-\(unique)-\(name)"
    }

    /// Publishes `count` rx buffers of 4 KiB (header included), like Linux does.
    func offerRx(_ count: Int, size: UInt32 = 4096) throws {
        for _ in 0..<count {
            let address = try driver.allocate(Int(size))
            let head = try driver.publish([.init(address: address, length: size, writable: true)], queue: 0)
            rxBuffers[head] = address
        }
    }

    /// Sends a packet from guest port `from` to host port `to` (header and payload in separate
    /// descriptors, as Linux does).
    func send(_ op: VsockHeader.Op, from: UInt32, to: UInt32, payload: [UInt8] = [], flags: UInt32 = 0,
              bufAlloc: UInt32 = 256 * 1024, fwdCnt: UInt32 = 0, notify: Bool = true) throws {
        let header = VsockHeader(srcCID: VsockGuest.cid, dstCID: VsockHeader.hostCID, srcPort: from, dstPort: to,
                                 length: UInt32(payload.count), op: op, flags: flags, bufAlloc: bufAlloc, fwdCnt: fwdCnt)
        try sendRaw(header.bytes, payload: payload, notify: notify)
    }

    func sendRaw(_ headerBytes: [UInt8], payload: [UInt8] = [], notify: Bool = true) throws {
        var buffers = [DriverDouble.Buffer(address: try driver.allocate(headerBytes.count, bytes: headerBytes),
                                           length: UInt32(headerBytes.count), writable: false)]
        if !payload.isEmpty {
            buffers.append(.init(address: try driver.allocate(payload.count, bytes: payload),
                                 length: UInt32(payload.count), writable: false))
        }
        try driver.publish(buffers, queue: 1, notify: notify)
    }

    /// Packets the device delivered since the last call, with their payloads.
    func received() throws -> [(header: VsockHeader, payload: [UInt8])] {
        try driver.takeUsed(queue: 0).map { element in
            guard let address = rxBuffers.removeValue(forKey: element.head) else { throw VirtioDeviceError("unknown rx head") }
            let bytes = try driver.memory.read(count: Int(element.length), at: address)
            guard let header = VsockHeader(bytes: bytes) else { throw VirtioDeviceError("short rx packet") }
            return (header, Array(bytes[VsockHeader.size...]))
        }
    }

    /// Runs the device's host-side event handling (what the VMM's event loop does).
    func pollHost() throws { _ = try device.processHostEvents() }
}

/// Blocking Unix-socket helpers for the host side of the tests.
enum HostSocket {
    static func listen(_ path: String) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        let bound = try UnixStream.withAddress(path) { bind(fd, $0, $1) }
        guard fd >= 0, bound == 0, Glibc.listen(fd, 8) == 0 else { throw VirtioDeviceError("listen \(path)") }
        return fd
    }

    static func connect(_ path: String) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard try UnixStream.withAddress(path, { Glibc.connect(fd, $0, $1) }) == 0 else {
            throw VirtioDeviceError("connect \(path): errno \(errno)")
        }
        return fd
    }

    static func write(_ fd: Int32, _ bytes: [UInt8]) {
        // SAFETY: writes the local array.
        _ = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
    }

    /// What is readable now (non-blocking); nil at end of stream.
    static func readAvailable(_ fd: Int32) -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: 65536)
        // SAFETY: receives at most buffer.count bytes into the local buffer.
        let count = recv(fd, &buffer, buffer.count, Int32(MSG_DONTWAIT))
        if count == 0 { return nil }
        return count < 0 ? [] : Array(buffer[0..<count])
    }
}
