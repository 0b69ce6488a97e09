#if canImport(Glibc)
import Glibc
#endif
import Memory
import Testing
@testable import VMM

/// The firmware kernel Machine loads (it is not run).
private let firmwareVmlinux = firmware + "/vmlinux"

/// A whole `Machine` with a virtio-mem region, built on the real /dev/kvm (it is never run):
/// the hotplug target and status the control API uses, and the config change the guest gets.
@Suite("Machine memory hotplug target and status",
       .enabled(if: access(firmwareVmlinux, R_OK) == 0, "needs firmware/out/vmlinux (make -C firmware)"))
struct MemHotplugMachineTests {
    static func machine(memory: String) throws -> Machine {
        let (ram, hotplug) = try HotplugOption.parseMemory(memory)
        var config = VMConfig(kernelPath: firmwareVmlinux, memorySize: ram, console: .none)
        config.devices.hotplug = hotplug
        return try Machine(config: config, logger: .discarding)
    }

    @Test("setHotplugTarget updates requested_size, bumps the config generation and raises a config interrupt")
    func target() throws {
        let machine = try MemHotplugMachineTests.machine(memory: "256M,hotplug=1G,requested=256M")
        #expect(machine.hotplugStatus == HotplugStatus(regionSize: 1 * .gib, blockSize: 2 * .mib,
                                                       requestedSize: 256 * .mib, pluggedSize: 0))
        #expect(machine.memory.regions.map(\.guestBase.raw) == [0, 4 * .gib])
        #expect(machine.memory.bootRegions.count == 1)
        let slot = try #require(machine.virtio.slots.last)
        #expect(slot.name == "virtio-mem")
        #expect(machine.virtio.commandLine.contains("virtio_mmio.device=4K@0x\(String(slot.base, radix: 16)):\(slot.irq)"))

        // MMIO reads as the guest makes them: 32-bit registers, a 64-bit config field.
        func register(_ offset: UInt64) -> UInt32 {
            var value: UInt32 = 0
            withUnsafeMutableBytes(of: &value) { slot.transport.read(offset: offset, data: $0) }
            return value
        }
        func config(_ offset: UInt64) -> UInt64 {
            var value: UInt64 = 0
            withUnsafeMutableBytes(of: &value) { slot.transport.read(offset: 0x100 + offset, data: $0) }
            return value
        }
        let generation = register(0xFC)
        #expect(register(0x060) == 0, "no interrupt pending yet")
        #expect(config(16) == 4 * .gib, "addr")

        try machine.setHotplugTarget(bytes: 768 * .mib)
        #expect(machine.hotplugStatus?.requestedSize == 768 * .mib)
        #expect(config(48) == 768 * .mib, "requested_size in the config space")
        #expect(register(0xFC) != generation)
        #expect(register(0x060) & 2 != 0, "config-change interrupt pending")

        for bad: UInt64 in [3 * .mib, 2 * .gib] {
            let error = #expect(throws: VMMError.self) { try machine.setHotplugTarget(bytes: bad) }
            #expect(error?.description.hasPrefix("hotplug target ") == true, "\(String(describing: error))")
        }
        #expect(machine.hotplugStatus?.requestedSize == 768 * .mib)
        try machine.setHotplugTarget(bytes: 0)
        #expect(config(48) == 0)
    }

    @Test("without hotplug= there is no status and a target is refused")
    func none() throws {
        let machine = try MemHotplugMachineTests.machine(memory: "256M")
        #expect(machine.hotplugStatus == nil)
        #expect(machine.memory.regions.count == 1)
        let error = #expect(throws: VMMError.self) { try machine.setHotplugTarget(bytes: 128 * .mib) }
        #expect(error?.description.contains("no hotplug memory") == true)
    }
}
