import Memory
import Virtio
import Logging

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

/// Memory hotplug with virtio-mem. The hotplug region is part of `Machine.memory` (a region
/// flagged `hotpluggable`, in the same KVM memory-slot loop as boot RAM, one slot for the whole
/// region) rather than a separate mapping: once the guest plugs and onlines blocks, it puts
/// page cache and user pages there, and virtio-blk/net/vsock must be able to DMA into them
/// through the one `GuestMemory` every device translates with. The e820 map is built from
/// `bootRegions` only, so the guest learns of the region from the device alone.
extension Machine {
    /// Guest memory for `config`: boot RAM split around the MMIO gap, plus the hotplug region
    /// (MAP_NORESERVE, so it costs nothing until the guest plugs and touches blocks).
    static func makeGuestMemory(_ config: VMConfig) throws -> GuestMemory {
        let boot = try MachineLayout.ramLayout(memorySize: config.memorySize)
        guard let hotplug = config.devices.hotplug else { return try GuestMemory(layout: boot, hugePages: config.hugePages) }
        try hotplug.validate()
        let base = MachineLayout.hotplugBase(bootLayout: boot)
        guard base.adding(hotplug.regionSize) != nil else {
            throw VMMError.config("--memory: the hotplug region does not fit above guest RAM")
        }
        return try GuestMemory(layout: boot, hotplug: [(base, hotplug.regionSize)], hugePages: config.hugePages)
    }

    /// Creates and attaches the virtio-mem device when `--memory` has `hotplug=`.
    func attachMemDevices() throws {
        guard let option = config.devices.hotplug,
              let region = memory.regions.first(where: { $0.hotpluggable }) else { return }
        let device = try MemDevice(memory: memory, address: region.guestBase, regionSize: region.size,
                                   blockSize: option.blockSize, requestedSize: option.requestedSize)
        _ = try virtio.attach(device, name: "virtio-mem", vm: vm, memory: memory, mmio: mmio, logger: logger)
    }

    /// The virtio-mem device and its transport (the one that signals config changes), if any.
    var memSlot: (device: MemDevice, transport: MMIOTransport)? {
        for slot in virtio.slots {
            if let device = slot.transport.device as? MemDevice { return (device, slot.transport) }
        }
        return nil
    }

    /// Asks the guest to grow or shrink its hotplugged memory to `bytes` (a multiple of the
    /// block size, at most the region size). Called by the control API.
    public func setHotplugTarget(bytes: UInt64) throws(VMMError) {
        guard let (device, transport) = memSlot, let option = config.devices.hotplug else {
            throw .config("this VM has no hotplug memory (start it with --memory SIZE,hotplug=SIZE)")
        }
        try option.checkTarget(bytes, name: "hotplug target ")
        do {
            try device.setRequestedSize(bytes)
        } catch {
            throw .config(error.description)
        }
        transport.configChanged()
    }

    /// The hotplug region's state, or nil when the VM has none.
    public var hotplugStatus: HotplugStatus? {
        memSlot.map { device, _ in
            HotplugStatus(regionSize: device.regionSize, blockSize: device.blockSize,
                          requestedSize: device.requestedSize, pluggedSize: device.pluggedSize)
        }
    }
}

extension Machine {
    /// The virtio-mem device's counters (requests, responses, discarded bytes), or nil.
    public var virtioMemCounters: [String: UInt64]? { memSlot?.device.counters }
}
