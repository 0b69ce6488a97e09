import Devices
import Memory
import Virtio
import VirtioTesting

/// The guest memory the device targets share, mapped once per process and laid anew from each
/// input: 64 KiB of RAM at 0 holding the input's memory image, a 4 KiB region right after it
/// (so a buffer can straddle two regions, which must be refused), and a 1 MiB hotplug region
/// for virtio-mem. Small on purpose: a fresh image costs one 64 KiB copy per execution.
public final class FuzzGuest: @unchecked Sendable {
    public static let ramSize: UInt64 = 64 * 1024
    public static let secondRegion = GuestAddress(0x1_0000)
    public static let secondSize: UInt64 = 4096
    public static let hotplugBase = GuestAddress(0x10_0000)
    public static let hotplugSize: UInt64 = 1 << 20

    /// Re-notifies a device asked for per input at most (see `followRequeues`).
    public static let requeueLimit = 8

    public let memory: GuestMemory
    public let line = DriverDouble.CountingLine()
    public let interrupt: VirtioInterrupt
    private let requeues = Requeues()

    public init() {
        // The layout is fixed and valid; a failure here is a broken harness, not a finding.
        memory = try! GuestMemory(layout: [(GuestAddress(0), FuzzGuest.ramSize),
                                           (FuzzGuest.secondRegion, FuzzGuest.secondSize)],
                                  hotplug: [(FuzzGuest.hotplugBase, FuzzGuest.hotplugSize)])
        interrupt = VirtioInterrupt(line: line)
    }

    /// Zeroes RAM and copies `image` to guest address 0 (at most `ramSize` bytes of it); the
    /// hotplug region's pages go back to the host, so no input sees another's bytes.
    public func load(image: UnsafeRawBufferPointer) {
        try! memory.zero(at: GuestAddress(0), length: FuzzGuest.ramSize)
        try! memory.zero(at: FuzzGuest.secondRegion, length: FuzzGuest.secondSize)
        try! memory.discard(at: FuzzGuest.hotplugBase, length: FuzzGuest.hotplugSize)
        let count = min(image.count, Int(FuzzGuest.ramSize))
        if count > 0 { try! memory.write(UnsafeRawBufferPointer(rebasing: image[0..<count]), at: GuestAddress(0)) }
        interrupt.acknowledge(~0)
        requeues.reset()
    }

    /// A transport for `device` over this memory; its log lines (NEEDS_RESET reasons) are
    /// dropped, and its requests for another notify (the device stopped at its budget) wait in
    /// this guest for `followRequeues`. One transport per input: `load` forgets the requests.
    public func transport(for device: any VirtioDevice) -> MMIOTransport {
        MMIOTransport(device: device, memory: memory, interrupt: interrupt, name: "fuzz",
                      requeue: { [requeues] queue in requeues.ask(queue) }, logger: .discarding)
    }

    /// Gives `transport` the notifies its device asked for, as the VMM's event loop does when a
    /// device's `requeue` signals the queue's ioeventfd again, but at most `requeueLimit` per
    /// input: a ring that feeds itself (the device's used ring over its available index) keeps
    /// asking, and each notify serves one budget of it. Targets call it after every step that
    /// can run a device.
    public func followRequeues(_ transport: MMIOTransport) {
        while let queue = requeues.next(limit: FuzzGuest.requeueLimit) {
            transport.notify(queue: queue)
        }
    }
}

/// The queues a transport asked to have notified again, in order, each at most once (as the
/// ioeventfd's counter coalesces signals), and how many were followed during the input.
/// libFuzzer runs every input on one thread, and so do the devices here.
private final class Requeues: @unchecked Sendable {
    private var pending: [Int] = []
    private var followed = 0

    func ask(_ queue: Int) {
        if !pending.contains(queue) { pending.append(queue) }
    }

    /// The next queue to notify, or nil when none is pending or `limit` were followed already.
    func next(limit: Int) -> Int? {
        guard followed < limit, !pending.isEmpty else { return nil }
        followed += 1
        return pending.removeFirst()
    }

    func reset() {
        pending.removeAll(keepingCapacity: true)
        followed = 0
    }
}

/// Register access on a transport, as the guest's driver does it through MMIO exits.
public extension MMIOTransport {
    func readRegister(_ offset: Int, width: Int = 4) -> UInt64 {
        var value: UInt64 = 0
        withUnsafeMutableBytes(of: &value) { read(offset: UInt64(offset), data: UnsafeMutableRawBufferPointer(rebasing: $0[0..<width])) }
        return value
    }

    func writeRegister(_ offset: Int, _ value: UInt64, width: Int = 4) {
        withUnsafeBytes(of: value) { write(offset: UInt64(offset), data: UnsafeRawBufferPointer(rebasing: $0[0..<width])) }
    }
}
