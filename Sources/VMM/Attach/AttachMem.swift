import Virtio

extension Machine {
    /// Creates and attaches the virtio-mem device(s) of `config.devices`. (Owned by the
    /// virtio-mem work.)
    func attachMemDevices() throws {}
}
