import CKVM
import KVM
import Memory

/// A VM with no irqchip (so `hlt` exits to userspace) running a few bytes of 16-bit real-mode
/// code at 0x1000, with guest RAM slots where the test asks for them.
final class RealModeGuest {
    static let codeAddress: UInt64 = 0x1000

    let system: KVMSystem
    let vm: VirtualMachine
    let memory: GuestMemory
    let vcpu: VCPU

    init(code: [UInt8], slots: [(base: UInt64, size: UInt64)] = [(0, 0x10000)]) throws {
        system = try KVMSystem()
        vm = try system.createVM()
        try vm.setTSSAddress(0xFFFB_D000)
        memory = try GuestMemory(layout: slots.map { (GuestAddress($0.base), $0.size) })
        for (slot, region) in memory.regions.enumerated() {
            try vm.setMemoryRegion(slot: UInt32(slot), guestAddress: region.guestBase.raw,
                                   size: region.size, hostAddress: region.hostAddress)
        }
        try memory.write(code, at: GuestAddress(RealModeGuest.codeAddress))
        vcpu = try vm.createVCPU(id: 0)
        var sregs = try vcpu.getSpecialRegisters()
        sregs.cs.base = 0
        sregs.cs.selector = 0
        try vcpu.setSpecialRegisters(sregs)
        var regs = kvm_regs()
        regs.rip = RealModeGuest.codeAddress
        regs.rflags = 2
        try vcpu.setRegisters(regs)
    }

    /// Runs until the next exit that is not `.interrupted`.
    func next() throws -> VcpuExit {
        while true {
            let exit = try vcpu.runOnce()
            if case .interrupted = exit { continue }
            return exit
        }
    }
}
