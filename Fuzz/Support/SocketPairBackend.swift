#if canImport(Glibc)
import Glibc
#endif
import Virtio

/// A datagram socket pair standing in for the tap (one frame per datagram, non-blocking), as in
/// the unit tests: the device has one end, the target the other.
public final class SocketPairBackend: NetBackend, @unchecked Sendable {
    public let fd: Int32
    public let peer: Int32
    public var label: String { "socketpair" }
    /// Where drained frames go (one buffer for the process: a per-call one costs more than the
    /// rest of an execution).
    private var scratch = [UInt8](repeating: 0, count: 70_000)

    public init() {
        var fds: [Int32] = [-1, -1]
        let type = Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        precondition(socketpair(AF_UNIX, type, 0, &fds) == 0, "fuzz harness: socketpair failed")
        fd = fds[0]
        peer = fds[1]
    }

    public func setOffloads(_ flags: UInt32) throws(VirtioDeviceError) {}

    /// Sends `bytes` towards the device as one frame (dropped when the socket is full).
    public func inject(_ bytes: [UInt8]) {
        // SAFETY: sends the local array's own bytes.
        _ = bytes.withUnsafeBytes { send(peer, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
    }

    /// Reads and drops every frame the device sent; returns how many there were.
    @discardableResult
    public func drain() -> Int {
        var frames = 0
        // SAFETY: receives at most scratch.count bytes into the scratch buffer.
        while scratch.withUnsafeMutableBytes({ recv(peer, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }) >= 0 {
            frames += 1
        }
        return frames
    }

    /// Drops the frames queued towards the device (reading them from the device's end).
    public func drainDeviceSide() {
        // SAFETY: receives at most scratch.count bytes into the scratch buffer.
        while scratch.withUnsafeMutableBytes({ recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }) >= 0 {}
    }
}

/// An event-loop watch that ignores what the device asks for (the target calls it directly).
public final class NoWatch: BackendWatch, @unchecked Sendable {
    public init() {}
    public func setReadable(_ enabled: Bool) {}
}
