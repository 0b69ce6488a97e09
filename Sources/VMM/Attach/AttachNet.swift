#if canImport(Glibc)
import Glibc
#endif
import Virtio
import Logging

extension Machine {
    /// Creates and attaches a virtio-net device for each `--net`: opens (or creates) its tap,
    /// and subscribes the tap to the event loop once it runs. A tap created here is removed by
    /// the kernel when kvmrun exits; an existing one is left as it was.
    func attachNetDevices() throws {
        var seen = Set<String>()
        for (index, option) in config.devices.nets.enumerated() {
            guard seen.insert(option.tap).inserted else {
                throw VMMError.config("--net: tap \(option.tap) is given more than once")
            }
            let tap: Tap
            do {
                tap = try Tap.open(name: option.tap)
            } catch {
                throw VMMError.setup("--net tap=\(option.tap): \(error)")
            }
            let mac = option.mac ?? NetOption.defaultMAC(index: index, pid: getpid())
            let device = NetDevice(backend: tap, mac: mac, logger: logger)
            let transport = try virtio.attach(device, name: "virtio-net \(option.tap)", vm: vm, memory: memory,
                                              mmio: mmio, logger: logger)
            let logger = self.logger
            loopSubscribers.append { loop in
                var token: UInt64 = 0
                token = try loop.subscribe(fd: tap.fd, events: 0) { [unowned loop] events in
                    if events & (EventLoop.error | EventLoop.hangUp) != 0 {
                        loop.unsubscribe(token)
                        device.backendFailed("tap \(tap.name) reported an error (deleted?)")
                        return
                    }
                    do {
                        try device.backendReadable()
                    } catch {
                        transport.fail("receive: \(error)")
                    }
                }
                guard let interest = loop.interest(token) else { return }
                device.connect(LoopWatch(interest: interest, label: tap.label, logger: logger))
            }
        }
    }
}

/// Turns a tap's event-loop subscription on and off for its device.
struct LoopWatch: BackendWatch {
    let interest: EventLoop.Interest
    let label: String
    let logger: Logger

    func setReadable(_ enabled: Bool) {
        do {
            try interest.set(enabled ? EventLoop.readable : 0)
        } catch {
            logger.warning("virtio-net \(label): \(error)")
        }
    }
}
