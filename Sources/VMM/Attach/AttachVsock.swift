import Virtio

extension Machine {
    /// Creates and attaches the virtio-vsock device(s) of `config.devices`. (Owned by the
    /// virtio-vsock work.)
    func attachVsockDevices() throws {}
}
