import Virtio

extension Machine {
    /// Creates and attaches the virtio-block device(s) of `config.devices`. (Owned by the
    /// virtio-block work.)
    func attachBlockDevices() throws {}
}
