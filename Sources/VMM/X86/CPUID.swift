import KVM

/// Builds one vCPU's CPUID table from what KVM supports: APIC IDs and topology per vCPU (one
/// thread per core, all cores in one package), the hypervisor bit and leaf, and no nested
/// virtualization. A pure function, so tests feed it synthetic tables.
public enum CPUIDFilter {
    static let leafFeatures: UInt32 = 0x1
    static let leafCacheParameters: UInt32 = 0x4
    static let leafExtendedTopology: UInt32 = 0xB
    static let leafExtendedTopologyV2: UInt32 = 0x1F
    static let leafHypervisor: UInt32 = 0x4000_0000
    static let leafAMDFeatures: UInt32 = 0x8000_0001
    static let leafAMDSizes: UInt32 = 0x8000_0008
    static let leafAMDTopology: UInt32 = 0x8000_001E

    static let ecxHypervisor: UInt32 = 1 << 31
    static let ecxVMX: UInt32 = 1 << 5
    static let ecxAMDSVM: UInt32 = 1 << 2
    static let edxHTT: UInt32 = 1 << 28

    /// Bits needed to number `count` items (the APIC ID shift of a topology level).
    static func bitsFor(_ count: UInt32) -> UInt32 {
        count <= 1 ? 0 : UInt32(32 - (count - 1).leadingZeroBitCount)
    }

    public static func filter(_ supported: [CPUIDEntry], vcpuID: UInt32, vcpuCount: UInt32) -> [CPUIDEntry] {
        let apicID = vcpuID
        let coreShift = bitsFor(vcpuCount)
        return supported.map { original in
            var entry = original
            switch entry.function {
            case leafFeatures:
                // EBX: [31:24] initial APIC ID, [23:16] logical processors per package,
                // [15:8] CLFLUSH line size in 8-byte units.
                entry.ebx = (apicID << 24) | (min(vcpuCount, 255) << 16) | (8 << 8) | (entry.ebx & 0xFF)
                entry.ecx |= ecxHypervisor
                entry.ecx &= ~ecxVMX
                if vcpuCount > 1 { entry.edx |= edxHTT } else { entry.edx &= ~edxHTT }
            case leafCacheParameters:
                // EAX[31:26]: cores per package - 1; [25:14]: threads sharing this cache - 1
                // (the last-level cache is shared by all cores, the others are per core).
                let cacheType = entry.eax & 0x1F
                let level = (entry.eax >> 5) & 0x7
                guard cacheType != 0 else { break }
                let sharing: UInt32 = level >= 3 ? vcpuCount - 1 : 0
                entry.eax = (entry.eax & 0x3FFF) | ((sharing & 0xFFF) << 14) | (((vcpuCount - 1) & 0x3F) << 26)
            case leafExtendedTopology, leafExtendedTopologyV2:
                entry.edx = apicID
                switch entry.index {
                case 0:  // SMT level: one thread per core.
                    entry.eax = 0
                    entry.ebx = 1
                    entry.ecx = (1 << 8) | entry.index
                case 1:  // Core level: all vCPUs in one package.
                    entry.eax = coreShift
                    entry.ebx = vcpuCount
                    entry.ecx = (2 << 8) | entry.index
                default:  // No further levels.
                    entry.eax = 0
                    entry.ebx = 0
                    entry.ecx = entry.index
                }
            case leafHypervisor:
                // "KVMKVMKVM\0\0\0", highest hypervisor leaf at least 0x40000001.
                entry.eax = max(entry.eax, leafHypervisor + 1)
                entry.ebx = 0x4B4D_564B
                entry.ecx = 0x564B_4D56
                entry.edx = 0x0000_004D
            case leafAMDFeatures:
                entry.ecx &= ~ecxAMDSVM
            case leafAMDSizes:
                // ECX[7:0]: cores - 1; [15:12]: APIC ID bits for cores.
                entry.ecx = (entry.ecx & ~0xF0FF) | (coreShift << 12) | ((vcpuCount - 1) & 0xFF)
            case leafAMDTopology:
                entry.eax = apicID
                entry.ebx = (entry.ebx & ~0xFFFF) | apicID & 0xFF  // core ID, one thread per core
                entry.ecx = 0
            default:
                break
            }
            return entry
        }
    }
}
