import Memory

/// Virtio device types (virtio 1.x, section 5) kvmrun implements.
public enum VirtioDeviceType: UInt32, Sendable {
    case net = 1
    case block = 2
    case rng = 4
    case vsock = 19
    case mem = 24
}

/// Feature bits shared by every device (virtio 1.x, section 6).
public enum VirtioFeature {
    public static let version1: UInt64 = 1 << 32
    public static let accessPlatform: UInt64 = 1 << 33
    public static let ringIndirectDescriptors: UInt64 = 1 << 28
    public static let ringEventIndex: UInt64 = 1 << 29
}

/// What a device gets when the driver sets DRIVER_OK: guest memory, its queues (validated),
/// the features the driver accepted, and the way to interrupt the guest.
public struct VirtioActivation: @unchecked Sendable {
    public let memory: GuestMemory
    public let queues: [Queue]
    public let ackedFeatures: UInt64
    public let interrupt: VirtioInterrupt

    public init(memory: GuestMemory, queues: [Queue], ackedFeatures: UInt64, interrupt: VirtioInterrupt) {
        self.memory = memory
        self.queues = queues
        self.ackedFeatures = ackedFeatures
        self.interrupt = interrupt
    }
}

/// Why a device stopped working: a guest driver broke the protocol (a bad descriptor chain, a
/// ring outside memory) or the backend failed. The transport then sets DEVICE_NEEDS_RESET.
public struct VirtioDeviceError: Error, CustomStringConvertible, Equatable, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Whether a queue handler served everything it found or stopped at its budget. A handler
/// that stops leaves the rest for later: the VMM re-signals the queue's eventfd, so the event
/// loop serves its other file descriptors first, and a driver that publishes without end on
/// one queue cannot starve the loop.
public enum QueueWork: Equatable, Sendable {
    case finished
    case budgetExhausted
}

/// A virtio device behind a transport (virtio-mmio here). The transport owns feature
/// negotiation, queue set-up and the status state machine; the device owns its config space
/// and what happens on its queues.
///
/// Threads: `readConfig`/`writeConfig`, `activate` and `reset` are called from vCPU threads
/// (through MMIO exits); `processQueue` from the event loop thread when a queue's ioeventfd
/// fires (or from the vCPU thread on a QueueNotify write when no ioeventfd is registered).
/// Devices guard their own state.
public protocol VirtioDevice: AnyObject, Sendable {
    var deviceType: VirtioDeviceType { get }
    /// Features offered to the driver. Must include `VirtioFeature.version1`.
    var availableFeatures: UInt64 { get }
    /// Maximum size of each queue; the count is the device's number of queues.
    var queueMaxSizes: [UInt16] { get }
    /// Fills `data` from the device config space at `offset`; out-of-range bytes read as 0.
    func readConfig(offset: Int, into data: UnsafeMutableRawBufferPointer)
    /// Handles a driver write to the config space (most devices ignore them).
    func writeConfig(offset: Int, data: UnsafeRawBufferPointer)
    /// Starts the device with validated queues. Throwing puts the device into NEEDS_RESET.
    func activate(_ activation: VirtioActivation) throws(VirtioDeviceError)
    /// Handles buffers the driver made available on queue `index`, a bounded amount per call
    /// (`.budgetExhausted`: call again, after the loop's other work). Throwing puts the device
    /// into NEEDS_RESET (the transport logs the reason); it never takes the VMM down.
    func processQueue(_ index: Int) throws(VirtioDeviceError) -> QueueWork
    /// Returns the device to its initial state (driver wrote 0 to Status). After it returns the
    /// device touches no guest memory until the next activation.
    func reset()
}

public extension VirtioDevice {
    func writeConfig(offset: Int, data: UnsafeRawBufferPointer) {}
}

/// Copies `config` bytes from `offset` into `data`, zero-filling what lies past the end.
public func readConfigBytes(_ config: [UInt8], offset: Int, into data: UnsafeMutableRawBufferPointer) {
    for index in 0..<data.count {
        let source = offset + index
        data[index] = source >= 0 && source < config.count ? config[source] : 0
    }
}

/// A device that keeps counters (requests, bytes, errors) for the control API's device report.
public protocol CountingDevice {
    /// Counter name → value, e.g. `["read_bytes": 4096]`. Read from any thread.
    var counters: [String: UInt64] { get }
}
