import Virtio
import Logging

extension Machine {
    /// Creates and attaches a virtio-blk device for each `--disk`, in order (the guest sees them
    /// as vda, vdb, ...). An image that cannot be opened stops the VM before it boots.
    func attachBlockDevices() throws {
        let disks = config.devices.disks
        try DiskOption.checkUniqueIDs(disks)
        for disk in disks {
            let device: BlockDevice
            do {
                device = try BlockDevice(path: disk.path, readOnly: disk.readOnly, id: disk.id, logger: logger)
            } catch {
                throw VMMError.config("--disk id=\(disk.id): \(error)")
            }
            _ = try virtio.attach(device, name: "virtio-blk \(disk.id)", vm: vm, memory: memory, mmio: mmio, logger: logger)
        }
    }

    /// The attached drives with their transports, in attach order.
    var blockDrives: [(device: BlockDevice, transport: MMIOTransport)] {
        virtio.slots.compactMap { slot in (slot.transport.device as? BlockDevice).map { ($0, slot.transport) } }
    }

    /// Points drive `id` at a new backing file while the VM runs and raises a config-change
    /// interrupt so the guest sees the new capacity. Called by the control API. The new file is
    /// opened first (read-only drives read-only); if that fails the drive keeps its old file.
    public func updateDrive(id: String, path: String) throws(VMMError) {
        guard let drive = blockDrives.first(where: { $0.device.id == id }) else {
            let known = blockDrives.map(\.device.id)
            throw .config("no drive with id '\(id)' (drives: \(known.isEmpty ? "none" : known.joined(separator: ", ")))")
        }
        do {
            try drive.device.replaceBackingFile(path: path)
        } catch {
            throw .config("drive \(id): cannot switch to \(path): \(error)")
        }
        drive.transport.configChanged()
    }
}
