#if canImport(Glibc)
import Glibc
#endif
import CKVM
import Virtio
import Logging

extension Machine {
    /// Starts the control API on `config.devices.apiSocket`, if set, as a subscriber of the
    /// main event loop. Called before the vCPU threads start; the caller closes the returned
    /// server (removing the socket file) when the VM has stopped.
    func startAPI(on loop: EventLoop) throws -> APIServer? {
        guard let path = config.devices.apiSocket else { return nil }
        let control = MachineControl(machine: self)
        let server = try APIServer(path: path, control: control, loop: loop, logger: logger)
        let parked = server.parkedEvent
        for thread in threads {
            thread.onParked = {
                var one: UInt64 = 1
                // SAFETY: writes the local 8-byte counter increment eventfd expects.
                _ = write(parked.raw, &one, 8)
            }
        }
        return server
    }
}

/// The control API's view of a `Machine`. Lives on the event-loop thread.
final class MachineControl: VMControl {
    unowned let machine: Machine
    private let startedAt = kvmrun_monotonic_ns()
    private(set) var isPaused = false

    init(machine: Machine) { self.machine = machine }

    func info() -> VMInfo {
        let devices = machine.virtio.slots.map { slot in
            DeviceInfo(name: slot.name, type: String(describing: slot.transport.device.deviceType),
                       mmioBase: "0x" + String(slot.base, radix: 16), irq: slot.irq, status: slot.transport.status)
        }
        return VMInfo(state: isPaused ? .paused : .running, vcpus: machine.config.cpus,
                      memoryMib: machine.config.memorySize >> 20,
                      uptimeMs: (kvmrun_monotonic_ns() - startedAt) / 1_000_000,
                      devices: devices, hotplugMemory: machine.hotplugStatus.map(HotplugInfo.init))
    }

    func metrics() -> APIMetrics {
        var devices: [String: [String: UInt64]] = [:]
        for slot in machine.virtio.slots {
            var counters = (slot.transport.device as? any CountingDevice)?.counters ?? [:]
            counters["needs_reset"] = slot.transport.failureCount
            devices[slot.name] = counters
        }
        if let console = machine.consoleSink { devices["serial"] = console.counters }
        return APIMetrics(devices: devices, vcpus: machine.threads.map { VcpuMetrics(id: $0.vcpu.id, exits: $0.exitCount) })
    }

    func pause() {
        isPaused = true
        for thread in machine.threads { thread.pause() }
    }

    func resume() {
        isPaused = false
        for thread in machine.threads { thread.resume() }
    }

    var vcpusParked: Bool {
        machine.threads.allSatisfy { [.paused, .finished].contains($0.currentState) }
    }

    func setHotplugTarget(bytes: UInt64) throws(VMMError) { try machine.setHotplugTarget(bytes: bytes) }

    var hotplugStatus: HotplugStatus? { machine.hotplugStatus }

    func updateDrive(id: String, path: String) throws(VMMError) { try machine.updateDrive(id: id, path: path) }

    func sendCtrlAltDel() throws(VMMError) {
        throw .config("""
            SendCtrlAltDel cannot reach this guest: kvmrun's i8042 emulates the controller's reset line, \
            not a PS/2 keyboard, and the kvmrun guest kernel has no keyboard driver (CONFIG_SERIO_I8042 and \
            CONFIG_KEYBOARD_ATKBD are off in firmware/kernel/kvmrun.config); use {"action_type": "Shutdown"} \
            or reboot from inside the guest
            """)
    }

    func shutdown() { machine.requestStop(.shutdownRequested) }
}
