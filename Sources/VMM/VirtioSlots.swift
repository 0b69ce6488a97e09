#if canImport(Glibc)
import Glibc
#endif
import CKVM
import Devices
import KVM
import Memory
import Sys
import Virtio
import Logging

/// Where virtio-mmio devices live: 4 KiB windows from 0xd0001000 (just above the boot timer) and
/// one IOAPIC pin each from IRQ 5. Each device is announced to the guest kernel on its command
/// line (`virtio_mmio.device=4K@0xd0001000:5`), each queue's QueueNotify is an ioeventfd and each
/// device's interrupt an irqfd.
final class VirtioSlots {
    static let firstBase: UInt64 = 0xD000_1000
    static let firstIRQ: UInt32 = 5
    static let lastIRQ: UInt32 = 23

    struct Slot {
        let name: String
        let base: UInt64
        let irq: UInt32
        let transport: MMIOTransport
        let notifiers: [FileDescriptor]
    }

    private(set) var slots: [Slot] = []

    /// Places `device` in the next window, wires its interrupt and queue notifications.
    func attach(_ device: any VirtioDevice, name: String, vm: VirtualMachine, memory: GuestMemory, mmio: Bus,
                logger: Logger) throws -> MMIOTransport {
        let irq = VirtioSlots.firstIRQ + UInt32(slots.count)
        guard irq <= VirtioSlots.lastIRQ else {
            throw VMMError.config("too many virtio devices: \(slots.count) fit (IRQs \(VirtioSlots.firstIRQ)-\(VirtioSlots.lastIRQ))")
        }
        let base = VirtioSlots.firstBase + UInt64(slots.count) * MMIOTransport.windowSize
        let line = try EventFDInterrupt()
        try vm.registerIRQFD(eventFD: line.fd.raw, gsi: irq)
        var notifiers: [FileDescriptor] = []
        for queue in 0..<device.queueMaxSizes.count {
            let notifier = FileDescriptor(try sys("eventfd for \(name) queue \(queue)") { kvmrun_eventfd() })
            try vm.registerIOEventFD(eventFD: notifier.raw,
                                     mmioAddress: base + UInt64(MMIOTransport.Register.queueNotify),
                                     length: 4, value: UInt64(queue))
            notifiers.append(notifier)
        }
        // A device that stopped at its budget is notified again through its own ioeventfd, so
        // the loop serves everything else that is ready before it comes back.
        let requeue: @Sendable (Int) -> Void = { [notifiers] queue in notifiers[queue].signalEvent() }
        let transport = MMIOTransport(device: device, memory: memory, interrupt: VirtioInterrupt(line: line),
                                      name: name, requeue: requeue, logger: logger)
        try mmio.insert(transport, name: name, base: base, length: MMIOTransport.windowSize)
        slots.append(Slot(name: name, base: base, irq: irq, transport: transport, notifiers: notifiers))
        return transport
    }

    /// The `virtio_mmio.device=` parameters for the guest command line.
    var commandLine: String {
        slots.map { "virtio_mmio.device=4K@0x\(String($0.base, radix: 16)):\($0.irq)" }.joined(separator: " ")
    }

    /// Subscribes every queue's notifier to the event loop: a notification runs the device.
    func subscribe(to loop: EventLoop) throws {
        for slot in slots {
            for (queue, notifier) in slot.notifiers.enumerated() {
                try loop.subscribeQueue(notifier, transport: slot.transport, queue: queue)
            }
        }
    }
}

extension EventLoop {
    /// Runs queue `queue` of `transport` whenever its ioeventfd `notifier` is signalled (by the
    /// guest's QueueNotify, or by the transport's `requeue` after a budget ran out). The counter
    /// is reset before the device runs, so a signal that comes meanwhile is not lost.
    @discardableResult
    func subscribeQueue(_ notifier: FileDescriptor, transport: MMIOTransport, queue: Int) throws(SystemError) -> UInt64 {
        try subscribe(fd: notifier.raw) { _ in
            notifier.consumeEvent()
            transport.notify(queue: queue)
        }
    }
}
