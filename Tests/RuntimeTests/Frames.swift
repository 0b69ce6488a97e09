// Ethernet/ARP frames through a TAP opened with IFF_VNET_HDR, for the redirect tests. Until a
// VMM sets TUNSETVNETHDRSZ, each frame carries the kernel's default 10-byte virtio_net_hdr.
#if canImport(Glibc)
import Glibc
#endif
import Harness

struct ARP: Equatable {
    var operation: UInt16
    var senderMAC: [UInt8]
    var senderIP: [UInt8]
    var targetMAC: [UInt8]
    var targetIP: [UInt8]
}

enum Frames {
    static let vnetHeader = 10

    static func parseMAC(_ text: String) throws -> [UInt8] {
        let bytes = text.split(separator: ":").compactMap { UInt8($0, radix: 16) }
        guard bytes.count == 6 else { throw CommandFailure(description: "not a MAC: \(text)") }
        return bytes
    }

    /// A broadcast ARP request: who has `asking`? tell `ip` at `mac`.
    static func arpRequest(from mac: [UInt8], ip: [UInt8], asking: [UInt8]) -> [UInt8] {
        [UInt8](repeating: 0xff, count: 6) + mac + [0x08, 0x06]
            + [0, 1, 0x08, 0x00, 6, 4, 0, 1] + mac + ip + [UInt8](repeating: 0, count: 6) + asking
    }

    static func arp(_ frame: ArraySlice<UInt8>) -> ARP? {
        let frame = Array(frame)
        guard frame.count >= 42, frame[12] == 0x08, frame[13] == 0x06 else { return nil }
        return ARP(operation: UInt16(frame[20]) << 8 | UInt16(frame[21]), senderMAC: Array(frame[22..<28]), senderIP: Array(frame[28..<32]),
                   targetMAC: Array(frame[32..<38]), targetIP: Array(frame[38..<42]))
    }

    static func write(_ frame: [UInt8], to fd: Int32) throws {
        let bytes = [UInt8](repeating: 0, count: vnetHeader) + frame
        guard Glibc.write(fd, bytes, bytes.count) == bytes.count else { throw CommandFailure(description: "write to tap: errno \(errno)") }
    }

    /// One datagram to `ip`:`port` on the UDP socket `fd`.
    static func sendUDP(on fd: Int32, to ip: [UInt8], port: UInt16) throws {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = ip.withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) }
        let payload: [UInt8] = Array("kvmrun".utf8)
        // SAFETY: sendto reads the local sockaddr_in by its own size.
        let sent = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                sendto(fd, payload, payload.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard sent == payload.count else { throw CommandFailure(description: "sendto: errno \(errno)") }
    }

    /// Reads frames from the (non-blocking) TAP until one is an ARP `matching` accepts.
    static func readARP(from fd: Int32, timeoutMilliseconds: Int, matching: (ARP) -> Bool) -> ARP? {
        var waited = 0
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while waited < timeoutMilliseconds {
            var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&entry, 1, 50) > 0 else { waited += 50; continue }
            let count = read(fd, &buffer, buffer.count)
            guard count > vnetHeader else { continue }
            if let arp = arp(buffer[vnetHeader..<count]), matching(arp) { return arp }
        }
        return nil
    }
}

/// A child left running meanwhile (a ping, a process holding a namespace), stopped at the end.
final class ChildSleeper {
    let child: ChildProcess
    var pid: pid_t { child.pid }

    init(_ executable: String, _ arguments: [String]) throws { child = try ChildProcess(executable: executable, arguments: arguments) }

    /// `sleep 60` inside namespace `name`: `ip netns exec` execs it, so the pid is the sleeper's.
    convenience init(namespace name: String) throws {
        try self.init("/usr/sbin/ip", ["netns", "exec", name, "sleep", "60"])
        // Until ip has done its setns: the child's namespace link differs from ours.
        var tries = 0
        while tries < 250, Self.link("/proc/\(child.pid)/ns/net") == Self.link("/proc/self/ns/net") {
            usleep(20_000)
            tries += 1
        }
    }

    static func link(_ path: String) -> String {
        var target = [CChar](repeating: 0, count: 256)
        let count = readlink(path, &target, target.count - 1)
        return count > 0 ? String(decoding: target[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self) : ""
    }

    func stop() {
        child.signal(SIGKILL)
        _ = child.waitForExit(timeoutMilliseconds: 5000)
    }
}
