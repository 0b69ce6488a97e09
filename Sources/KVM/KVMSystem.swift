#if canImport(Glibc)
import Glibc
#endif
import CKVM
import Sys

/// The system-level KVM handle: `/dev/kvm`.
public final class KVMSystem: @unchecked Sendable {
    public static let defaultPath = "/dev/kvm"
    public static let requiredAPIVersion: Int32 = 12

    let fd: FileDescriptor
    public let path: String

    /// Opens the device and checks the API version. Fails with a message that says whether the
    /// device is missing, not accessible, or too old.
    public init(path: String = KVMSystem.defaultPath) throws(KVMError) {
        self.path = path
        let raw = kvmrun_open(path, O_RDWR | O_CLOEXEC)
        if raw < 0 {
            let code = Glibc.errno
            switch code {
            case ENOENT, ENODEV, ENXIO: throw .deviceMissing(path: path)
            case EACCES, EPERM: throw .permissionDenied(path: path)
            default: throw .ioctl(SystemError(call: "open \(path)", errno: code))
            }
        }
        fd = FileDescriptor(raw)
        let version = try kvmCall("KVM_GET_API_VERSION") { kvmrun_ioctl_val(fd.raw, KVMRUN_KVM_GET_API_VERSION, 0) }
        guard version == KVMSystem.requiredAPIVersion else { throw .unsupportedAPIVersion(version) }
    }

    /// KVM_CHECK_EXTENSION: 0 when absent, a positive value (often a count) when present.
    public func checkExtension(_ capability: Int32) -> Int32 {
        let result = kvmrun_ioctl_val(fd.raw, KVMRUN_KVM_CHECK_EXTENSION, UInt(capability))
        return result < 0 ? 0 : result
    }

    /// Throws `missingCapability` for the first capability in `capabilities` that is absent.
    public func require(_ capabilities: [(Int32, String)]) throws(KVMError) {
        for (capability, name) in capabilities where checkExtension(capability) <= 0 {
            throw .missingCapability(name: name)
        }
    }

    /// The capabilities every kvmrun VM needs.
    public static let requiredCapabilities: [(Int32, String)] = [
        (KVMRUN_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY"),
        (KVMRUN_CAP_IRQCHIP, "KVM_CAP_IRQCHIP"),
        (KVMRUN_CAP_PIT2, "KVM_CAP_PIT2"),
        (KVMRUN_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR"),
        (KVMRUN_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID"),
        (KVMRUN_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT"),
        (KVMRUN_CAP_IRQFD, "KVM_CAP_IRQFD"),
        (KVMRUN_CAP_IOEVENTFD, "KVM_CAP_IOEVENTFD"),
    ]

    /// The most vCPUs one VM may have (KVM_CAP_MAX_VCPUS, falling back to NR_VCPUS, then 4).
    public var maxVCPUs: Int {
        let max = checkExtension(KVMRUN_CAP_MAX_VCPUS)
        if max > 0 { return Int(max) }
        let recommended = checkExtension(KVMRUN_CAP_NR_VCPUS)
        return recommended > 0 ? Int(recommended) : 4
    }

    /// The number of memory slots per VM.
    public var maxMemorySlots: Int {
        let slots = checkExtension(KVMRUN_CAP_NR_MEMSLOTS)
        return slots > 0 ? Int(slots) : 32
    }

    /// Size of each vCPU's shared `kvm_run` mapping.
    public func vcpuMmapSize() throws(KVMError) -> Int {
        Int(try kvmCall("KVM_GET_VCPU_MMAP_SIZE") { kvmrun_ioctl_val(fd.raw, KVMRUN_KVM_GET_VCPU_MMAP_SIZE, 0) })
    }

    /// The CPUID leaves this host's KVM can offer a guest.
    public func supportedCPUID() throws(KVMError) -> [CPUIDEntry] {
        var table = kvmrun_cpuid()
        table.header.nent = UInt32(KVMRUN_MAX_CPUID)
        _ = try kvmCall("KVM_GET_SUPPORTED_CPUID") {
            // SAFETY: table is a kvm_cpuid2 header followed by KVMRUN_MAX_CPUID entries, as nent says.
            withUnsafeMutablePointer(to: &table) { kvmrun_ioctl_ptr(fd.raw, KVMRUN_KVM_GET_SUPPORTED_CPUID, $0) }
        }
        return withUnsafeMutablePointer(to: &table) { pointer in
            (0..<Int(pointer.pointee.header.nent)).map { index in
                // SAFETY: index < nent <= KVMRUN_MAX_CPUID.
                CPUIDEntry(kvmrun_cpuid_entry(pointer, Int32(index)).pointee)
            }
        }
    }

    /// Creates a VM (machine type 0).
    public func createVM() throws(KVMError) -> VirtualMachine {
        let raw = try kvmCall("KVM_CREATE_VM") { kvmrun_ioctl_val(fd.raw, KVMRUN_KVM_CREATE_VM, 0) }
        return VirtualMachine(fd: FileDescriptor(raw), system: self)
    }
}
