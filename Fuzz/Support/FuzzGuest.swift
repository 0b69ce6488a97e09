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

    public let memory: GuestMemory
    public let line = DriverDouble.CountingLine()
    public let interrupt: VirtioInterrupt

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
    }

    /// A transport for `device` over this memory; its log lines (NEEDS_RESET reasons) are dropped.
    public func transport(for device: any VirtioDevice) -> MMIOTransport {
        MMIOTransport(device: device, memory: memory, interrupt: interrupt, name: "fuzz") { _ in }
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
