#if canImport(Glibc)
import Glibc
#endif
import CKVM
import Sys

/// A KVM virtual machine file descriptor: memory slots, interrupt controller, vCPUs.
public final class VirtualMachine: @unchecked Sendable {
    let fd: FileDescriptor
    public let system: KVMSystem

    init(fd: FileDescriptor, system: KVMSystem) {
        self.fd = fd
        self.system = system
    }

    /// Registers host memory at `hostAddress` as guest-physical [guestAddress, +size) in `slot`.
    /// The caller keeps the host mapping alive for as long as the VM runs.
    public func setMemoryRegion(slot: UInt32, guestAddress: UInt64, size: UInt64, hostAddress: UInt,
                                readOnly: Bool = false) throws(KVMError) {
        var region = kvm_userspace_memory_region()
        region.slot = slot
        region.flags = readOnly ? UInt32(KVM_MEM_READONLY) : 0
        region.guest_phys_addr = guestAddress
        region.memory_size = size
        region.userspace_addr = UInt64(hostAddress)
        let what = "KVM_SET_USER_MEMORY_REGION slot \(slot) (0x\(String(guestAddress, radix: 16)), \(size >> 20) MiB)"
        // SAFETY: region is a local kvm_userspace_memory_region the ioctl only reads.
        try kvmCall(what) { kvmrun_ioctl_ptr(fd.raw, KVMRUN_KVM_SET_USER_MEMORY_REGION, &region) }
    }

    /// Places the three-page TSS region Intel VMX needs (must not overlap RAM or MMIO).
    public func setTSSAddress(_ address: UInt64) throws(KVMError) {
        try kvmCall("KVM_SET_TSS_ADDR 0x\(String(address, radix: 16))") {
            kvmrun_ioctl_val(fd.raw, KVMRUN_KVM_SET_TSS_ADDR, UInt(address))
        }
    }

    /// Places the one-page identity map VMX needs for real mode.
    public func setIdentityMapAddress(_ address: UInt64) throws(KVMError) {
        var value = address
        // SAFETY: value is a local u64 the ioctl only reads.
        try kvmCall("KVM_SET_IDENTITY_MAP_ADDR") { kvmrun_ioctl_ptr(fd.raw, KVMRUN_KVM_SET_IDENTITY_MAP_ADDR, &value) }
    }

    /// Creates the in-kernel PIC, IOAPIC and local APICs.
    public func createIRQChip() throws(KVMError) {
        try kvmCall("KVM_CREATE_IRQCHIP") { kvmrun_ioctl_val(fd.raw, KVMRUN_KVM_CREATE_IRQCHIP, 0) }
    }

    /// Creates the in-kernel i8254 PIT (needs the irqchip first).
    public func createPIT() throws(KVMError) {
        var config = kvm_pit_config()
        config.flags = UInt32(KVM_PIT_SPEAKER_DUMMY)
        // SAFETY: config is a local kvm_pit_config the ioctl only reads.
        try kvmCall("KVM_CREATE_PIT2") { kvmrun_ioctl_ptr(fd.raw, KVMRUN_KVM_CREATE_PIT2, &config) }
    }

    /// Sets the level of an interrupt line of the in-kernel irqchip.
    public func setIRQLine(_ irq: UInt32, high: Bool) throws(KVMError) {
        var level = kvm_irq_level()
        level.irq = irq
        level.level = high ? 1 : 0
        // SAFETY: level is a local kvm_irq_level the ioctl only reads.
        try kvmCall("KVM_IRQ_LINE \(irq)") { kvmrun_ioctl_ptr(fd.raw, KVMRUN_KVM_IRQ_LINE, &level) }
    }

    /// Routes writes to an eventfd into interrupt `gsi` (KVM_IRQFD).
    public func registerIRQFD(eventFD: Int32, gsi: UInt32) throws(KVMError) {
        var request = kvm_irqfd()
        request.fd = UInt32(bitPattern: eventFD)
        request.gsi = gsi
        // SAFETY: request is a local kvm_irqfd the ioctl only reads.
        try kvmCall("KVM_IRQFD gsi \(gsi)") { kvmrun_ioctl_ptr(fd.raw, KVMRUN_KVM_IRQFD, &request) }
    }

    /// Signals `eventFD` instead of exiting when the guest writes to MMIO `address` (any value,
    /// or only `value` when given) (KVM_IOEVENTFD).
    public func registerIOEventFD(eventFD: Int32, mmioAddress address: UInt64, length: UInt32,
                                  value: UInt64? = nil) throws(KVMError) {
        var request = kvm_ioeventfd()
        request.fd = eventFD
        request.addr = address
        request.len = length
        if let value {
            request.datamatch = value
            request.flags = 1 << 0  // kvm_ioeventfd_flag_nr_datamatch
        }
        // SAFETY: request is a local kvm_ioeventfd the ioctl only reads.
        try kvmCall("KVM_IOEVENTFD 0x\(String(address, radix: 16))") {
            kvmrun_ioctl_ptr(fd.raw, KVMRUN_KVM_IOEVENTFD, &request)
        }
    }

    /// Creates vCPU `id` and maps its `kvm_run` structure.
    public func createVCPU(id: UInt32) throws(KVMError) -> VCPU {
        let mmapSize = try system.vcpuMmapSize()
        let raw = try kvmCall("KVM_CREATE_VCPU \(id)") { kvmrun_ioctl_val(fd.raw, KVMRUN_KVM_CREATE_VCPU, UInt(id)) }
        let vcpuFD = FileDescriptor(raw)
        let mapping = mmap(nil, mmapSize, PROT_READ | PROT_WRITE, MAP_SHARED, raw, 0)
        guard let mapping, mapping != MAP_FAILED else {
            throw .ioctl(SystemError(call: "mmap kvm_run of vCPU \(id)", errno: Glibc.errno))
        }
        return VCPU(id: id, fd: vcpuFD, run: mapping, mmapSize: mmapSize)
    }
}
