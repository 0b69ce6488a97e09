import Virtio

extension Machine {
    /// Creates and attaches the virtio-net device(s) of `config.devices`. (Owned by the
    /// virtio-net work.)
    func attachNetDevices() throws {}
}
