/// Firecracker-compatible boot timer: the guest's init writes the magic value 123 to offset 0
/// of this MMIO page (at 0xd0000000) once userspace is up, and the VMM records the moment.
public final class BootTimer: BusDevice, @unchecked Sendable {
    public static let defaultAddress: UInt64 = 0xD000_0000
    public static let length: UInt64 = 0x1000
    public static let magicValue: UInt8 = 123

    private let onSignal: @Sendable () -> Void

    /// `onSignal` runs on every write of the magic value.
    public init(onSignal: @escaping @Sendable () -> Void) {
        self.onSignal = onSignal
    }

    public func read(offset: UInt64, data: UnsafeMutableRawBufferPointer) {
        if data.count > 0 { data.initializeMemory(as: UInt8.self, repeating: 0) }
    }

    public func write(offset: UInt64, data: UnsafeRawBufferPointer) {
        if offset == 0, data.first == BootTimer.magicValue { onSignal() }
    }
}
