import Devices
import Synchronization

/// A virtio-mmio device's interrupt: the InterruptStatus bits the driver reads and acknowledges,
/// and the line (an irqfd) raised when a bit is set.
public final class VirtioInterrupt: Sendable {
    public static let usedBuffer: UInt32 = 1 << 0
    public static let configChange: UInt32 = 1 << 1

    private let status = Atomic<UInt32>(0)
    private let line: any InterruptLine

    public init(line: any InterruptLine) {
        self.line = line
    }

    /// Sets `bits` in InterruptStatus and raises the line.
    public func signal(_ bits: UInt32) {
        status.bitwiseOr(bits, ordering: .acquiringAndReleasing)
        line.trigger()
    }

    /// Tells the driver used buffers are ready.
    public func signalUsedBuffers() { signal(VirtioInterrupt.usedBuffer) }

    /// Tells the driver the config space changed (or the device needs a reset).
    public func signalConfigChange() { signal(VirtioInterrupt.configChange) }

    /// The InterruptStatus register.
    public var pending: UInt32 { status.load(ordering: .acquiring) }

    /// The driver's InterruptACK write.
    public func acknowledge(_ bits: UInt32) {
        status.bitwiseAnd(~bits, ordering: .acquiringAndReleasing)
    }

    func clear() { status.store(0, ordering: .releasing) }
}
