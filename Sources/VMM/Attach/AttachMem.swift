import Virtio

/// What the control API reports about the virtio-mem hotplug region.
public struct HotplugStatus: Sendable, Equatable {
    public var regionSize: UInt64
    public var blockSize: UInt64
    public var requestedSize: UInt64
    public var pluggedSize: UInt64

    public init(regionSize: UInt64, blockSize: UInt64, requestedSize: UInt64, pluggedSize: UInt64) {
        self.regionSize = regionSize
        self.blockSize = blockSize
        self.requestedSize = requestedSize
        self.pluggedSize = pluggedSize
    }
}

extension Machine {
    /// Creates and attaches the virtio-mem device(s) of `config.devices`. (Owned by the
    /// virtio-mem work.)
    func attachMemDevices() throws {}

    /// Asks the guest to grow or shrink its hotplugged memory to `bytes` (a multiple of the
    /// block size, at most the region size). Called by the control API.
    public func setHotplugTarget(bytes: UInt64) throws(VMMError) {
        throw .config("this VM has no hotplug memory (start it with --memory SIZE,hotplug=SIZE)")
    }

    /// The hotplug region's state, or nil when the VM has none.
    public var hotplugStatus: HotplugStatus? { nil }
}
