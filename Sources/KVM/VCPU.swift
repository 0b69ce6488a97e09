#if canImport(Glibc)
import Glibc
#endif
import CKVM
import Sys

/// A virtual CPU: its file descriptor and its mmapped `kvm_run` page. Used by exactly one
/// thread, the vCPU's own. Other threads stop a KVM_RUN by sending that thread the kick signal:
/// its handler sets `immediate_exit` on the thread itself (`bindKicksToCurrentThread`).
public final class VCPU: @unchecked Sendable {
    public let id: UInt32
    let fd: FileDescriptor
    /// The shared kvm_run structure.
    let run: UnsafeMutablePointer<kvm_run>
    private let mmapSize: Int
    var mapSize: Int { mmapSize }

    init(id: UInt32, fd: FileDescriptor, run: UnsafeMutableRawPointer, mmapSize: Int) {
        self.id = id
        self.fd = fd
        // SAFETY: KVM maps at least sizeof(kvm_run) bytes at this address for the vCPU's lifetime.
        self.run = run.bindMemory(to: kvm_run.self, capacity: 1)
        self.mmapSize = mmapSize
    }

    deinit {
        munmap(UnsafeMutableRawPointer(run), mmapSize)
    }

    /// Enters the guest until the next exit and decodes it. Returns `.interrupted` when a
    /// signal or `immediate_exit` stopped the entry.
    public func runOnce() throws(KVMError) -> VcpuExit {
        let result = sysOnce("KVM_RUN on vCPU \(id)") { kvmrun_ioctl_val(fd.raw, KVMRUN_KVM_RUN, 0) }
        switch result {
        case .success:
            return VcpuExit.decode(run, vcpu: self)
        case let .failure(error) where error.errno == EINTR || error.errno == EAGAIN:
            run.pointee.immediate_exit = 0
            return .interrupted
        case let .failure(error):
            throw .ioctl(error)
        }
    }

    /// Makes the next KVM_RUN return at once (sets `immediate_exit`). From the vCPU's own
    /// thread only; other threads send the kick signal.
    public func requestImmediateExit() {
        // SAFETY: immediate_exit is a byte of the kvm_run page, written by this thread only
        // (and by its signal handler, which runs on this thread too).
        run.pointee.immediate_exit = 1
    }

    /// Points the calling thread's kick handler at this vCPU's kvm_run: from now on a kick
    /// signal to this thread sets `immediate_exit` here. Call on the vCPU thread before its
    /// first KVM_RUN; `unbindKicks()` before the thread ends.
    public func bindKicksToCurrentThread() {
        kvmrun_set_thread_kvm_run(run)
    }

    /// Detaches the calling thread's kick handler from any vCPU.
    public static func unbindKicks() {
        kvmrun_set_thread_kvm_run(nil)
    }

    public func getRegisters() throws(KVMError) -> kvm_regs {
        var regs = kvm_regs()
        // SAFETY: regs is a local kvm_regs the ioctl fills.
        try kvmCall("KVM_GET_REGS vCPU \(id)") { kvmrun_ioctl_ptr(fd.raw, KVMRUN_KVM_GET_REGS, &regs) }
        return regs
    }

    public func setRegisters(_ regs: kvm_regs) throws(KVMError) {
        var copy = regs
        // SAFETY: copy is a local kvm_regs the ioctl only reads.
        try kvmCall("KVM_SET_REGS vCPU \(id)") { kvmrun_ioctl_ptr(fd.raw, KVMRUN_KVM_SET_REGS, &copy) }
    }

    public func getSpecialRegisters() throws(KVMError) -> kvm_sregs {
        var sregs = kvm_sregs()
        // SAFETY: sregs is a local kvm_sregs the ioctl fills.
        try kvmCall("KVM_GET_SREGS vCPU \(id)") { kvmrun_ioctl_ptr(fd.raw, KVMRUN_KVM_GET_SREGS, &sregs) }
        return sregs
    }

    public func setSpecialRegisters(_ sregs: kvm_sregs) throws(KVMError) {
        var copy = sregs
        // SAFETY: copy is a local kvm_sregs the ioctl only reads.
        try kvmCall("KVM_SET_SREGS vCPU \(id)") { kvmrun_ioctl_ptr(fd.raw, KVMRUN_KVM_SET_SREGS, &copy) }
    }

    /// Sets the FPU to its reset state as Linux expects it (FCW 0x37f, MXCSR 0x1f80).
    public func setDefaultFPU() throws(KVMError) {
        var fpu = kvm_fpu()
        fpu.fcw = 0x37f
        fpu.mxcsr = 0x1f80
        // SAFETY: fpu is a local kvm_fpu the ioctl only reads.
        try kvmCall("KVM_SET_FPU vCPU \(id)") { kvmrun_ioctl_ptr(fd.raw, KVMRUN_KVM_SET_FPU, &fpu) }
    }

    /// Writes model-specific registers.
    public func setMSRs(_ entries: [(index: UInt32, value: UInt64)]) throws(KVMError) {
        guard entries.count <= Int(KVMRUN_MAX_MSRS) else {
            throw .invalidArgument("\(entries.count) MSRs given, at most \(KVMRUN_MAX_MSRS) supported")
        }
        var table = kvmrun_msrs()
        table.header.nmsrs = UInt32(entries.count)
        let written = withUnsafeMutablePointer(to: &table) { pointer in
            for (offset, entry) in entries.enumerated() {
                // SAFETY: offset < entries.count <= KVMRUN_MAX_MSRS entries in the wrapper.
                let slot = kvmrun_msr_entry(pointer, Int32(offset))
                slot.pointee.index = entry.index
                slot.pointee.data = entry.value
            }
            // SAFETY: the wrapper holds nmsrs entries right after the kvm_msrs header.
            return kvmrun_ioctl_ptr(fd.raw, KVMRUN_KVM_SET_MSRS, pointer)
        }
        if written < 0 { throw .ioctl(SystemError(call: "KVM_SET_MSRS vCPU \(id)", errno: Glibc.errno)) }
        if Int(written) != entries.count {
            let failed = entries[Int(written)].index
            throw .invalidArgument("KVM_SET_MSRS vCPU \(id): MSR 0x\(String(failed, radix: 16)) was refused")
        }
    }

    /// Sets the CPUID table this vCPU reports.
    public func setCPUID(_ entries: [CPUIDEntry]) throws(KVMError) {
        guard entries.count <= Int(KVMRUN_MAX_CPUID) else {
            throw .invalidArgument("\(entries.count) CPUID entries, at most \(KVMRUN_MAX_CPUID) supported")
        }
        var table = kvmrun_cpuid()
        table.header.nent = UInt32(entries.count)
        let result = withUnsafeMutablePointer(to: &table) { pointer in
            for (offset, entry) in entries.enumerated() {
                // SAFETY: offset < entries.count <= KVMRUN_MAX_CPUID entries in the wrapper.
                kvmrun_cpuid_entry(pointer, Int32(offset)).pointee = entry.kvmValue
            }
            // SAFETY: the wrapper holds nent entries right after the kvm_cpuid2 header.
            return kvmrun_ioctl_ptr(fd.raw, KVMRUN_KVM_SET_CPUID2, pointer)
        }
        if result < 0 { throw .ioctl(SystemError(call: "KVM_SET_CPUID2 vCPU \(id)", errno: Glibc.errno)) }
    }

    /// Programs the local APIC's LINT0 as ExtINT and LINT1 as NMI, as a PC's BIOS leaves them
    /// and as Linux expects for the legacy PIC and NMI watchdog paths.
    public func configureLocalInterrupts() throws(KVMError) {
        var lapic = kvm_lapic_state()
        // SAFETY: lapic is a local kvm_lapic_state the ioctl fills.
        try kvmCall("KVM_GET_LAPIC vCPU \(id)") { kvmrun_ioctl_ptr(fd.raw, KVMRUN_KVM_GET_LAPIC, &lapic) }
        let lvtLINT0 = 0x350, lvtLINT1 = 0x360
        let deliveryModeMask: UInt32 = 0x700
        let extINT: UInt32 = 0x700, nmi: UInt32 = 0x400
        withUnsafeMutableBytes(of: &lapic.regs) { registers in
            // SAFETY: regs is the 1 KiB APIC register page; both offsets + 4 are inside it.
            let lint0 = registers.loadUnaligned(fromByteOffset: lvtLINT0, as: UInt32.self)
            registers.storeBytes(of: (lint0 & ~deliveryModeMask) | extINT, toByteOffset: lvtLINT0, as: UInt32.self)
            let lint1 = registers.loadUnaligned(fromByteOffset: lvtLINT1, as: UInt32.self)
            registers.storeBytes(of: (lint1 & ~deliveryModeMask) | nmi, toByteOffset: lvtLINT1, as: UInt32.self)
        }
        // SAFETY: lapic is a local kvm_lapic_state the ioctl only reads.
        try kvmCall("KVM_SET_LAPIC vCPU \(id)") { kvmrun_ioctl_ptr(fd.raw, KVMRUN_KVM_SET_LAPIC, &lapic) }
    }
}
