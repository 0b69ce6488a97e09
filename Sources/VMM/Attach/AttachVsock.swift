import Virtio
import Logging

extension Machine {
    /// Creates the virtio-vsock device of `--vsock` (it listens on its Unix socket at once) and
    /// subscribes its host-side sockets to the event loop.
    func attachVsockDevices() throws {
        guard let option = config.devices.vsock else { return }
        let device: VsockDevice
        do {
            device = try VsockDevice(cid: option.cid, udsPath: option.udsPath)
        } catch {
            throw VMMError.config("--vsock uds=\(option.udsPath): \(error)")
        }
        let transport = try virtio.attach(device, name: "virtio-vsock", vm: vm, memory: memory, mmio: mmio, logger: logger)
        // Weak: the loop's handlers may outlive the machine, the device (and its socket file) must not.
        loopSubscribers.append { [weak device, weak transport] loop in
            guard let fd = device?.pollFD else { return }
            try loop.subscribe(fd: fd) { [weak device, weak transport] _ in
                do {
                    if try device?.processHostEvents() == .budgetExhausted {
                        transport?.notifyLater(queue: VsockDevice.txQueue)
                    }
                } catch {
                    transport?.fail("host socket event: \(error)")
                }
            }
        }
    }
}
