/// Where a virtio-net device's frames go: a packet-oriented, non-blocking file descriptor that
/// carries one frame (virtio-net header + Ethernet frame) per read or write. A tap in the VMM; a
/// datagram socket pair in unit tests.
public protocol NetBackend: AnyObject, Sendable {
    /// The file descriptor (non-blocking). Owned by the backend.
    var fd: Int32 { get }
    /// A name for log lines and errors ("tap kvm0").
    var label: String { get }
    /// Tells the backend which offloads (TUNSETOFFLOAD flags) the guest accepts on receive.
    func setOffloads(_ flags: UInt32) throws(VirtioDeviceError)
}

/// Turns the event loop's watch for "the backend fd is readable" on and off. Devices call it
/// with their own lock held, from the event loop or a vCPU thread, so it must be thread-safe
/// and must not block.
public protocol BackendWatch: Sendable {
    func setReadable(_ enabled: Bool)
}
