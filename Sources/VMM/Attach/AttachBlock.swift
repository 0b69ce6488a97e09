import Virtio

extension Machine {
    /// Creates and attaches the virtio-block device(s) of `config.devices`. (Owned by the
    /// virtio-block work.)
    func attachBlockDevices() throws {}

    /// Points drive `id` at a new backing file while the VM runs and raises a config-change
    /// interrupt so the guest sees the new capacity. Called by the control API.
    public func updateDrive(id: String, path: String) throws(VMMError) {
        throw .config("drive update is not implemented yet")
    }
}
