import CKVM
import KVM

/// Puts a vCPU into the state the boot loader computed: registers, segments, control registers,
/// plus the CPUID, MSR, FPU and local-APIC set-up every vCPU needs.
enum VcpuSetup {
    static func configure(_ vcpu: VCPU, supportedCPUID: [CPUIDEntry], host: CPUIDHost, vcpuCount: Int) throws(KVMError) {
        let cpuid = CPUIDFilter.filter(supportedCPUID, vcpuID: vcpu.id, vcpuCount: UInt32(vcpuCount), host: host)
        try vcpu.setCPUID(cpuid)
        try vcpu.setMSRs(BootMSRs.entries)
        try vcpu.setDefaultFPU()
        try vcpu.configureLocalInterrupts()
    }

    /// Sets the boot processor's registers for the kernel entry.
    static func setBootRegisters(_ vcpu: VCPU, _ state: BootCPUState) throws(KVMError) {
        var sregs = try vcpu.getSpecialRegisters()
        sregs.cs = kvmSegment(state.code)
        let data = kvmSegment(state.data)
        sregs.ds = data
        sregs.es = data
        sregs.fs = data
        sregs.gs = data
        sregs.ss = data
        sregs.tr = kvmSegment(state.tss)
        sregs.gdt.base = state.gdtBase
        sregs.gdt.limit = state.gdtLimit
        sregs.idt.base = state.idtBase
        sregs.idt.limit = state.idtLimit
        sregs.cr0 = state.cr0
        sregs.cr3 = state.cr3
        sregs.cr4 = state.cr4
        sregs.efer = state.efer
        try vcpu.setSpecialRegisters(sregs)

        var regs = kvm_regs()
        regs.rip = state.rip
        regs.rsp = state.rsp
        regs.rbp = state.rbp
        regs.rsi = state.rsi
        regs.rbx = state.rbx
        regs.rflags = state.rflags
        try vcpu.setRegisters(regs)
    }

    static func kvmSegment(_ segment: SegmentState) -> kvm_segment {
        var result = kvm_segment()
        result.base = segment.base
        result.limit = segment.limit
        result.selector = segment.selector
        result.type = segment.type
        result.present = segment.present
        result.dpl = segment.dpl
        result.db = segment.db
        result.s = segment.s
        result.l = segment.l
        result.g = segment.g
        result.avl = 0
        result.unusable = segment.present == 0 ? 1 : 0
        return result
    }
}
