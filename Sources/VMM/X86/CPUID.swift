import KVM

/// What the host's KVM offers beyond KVM_GET_SUPPORTED_CPUID, which the table must announce
/// itself (KVM reports the TSC-deadline timer as a capability, not as a CPUID bit).
public struct CPUIDHost: Equatable, Sendable {
    /// KVM_CAP_TSC_DEADLINE_TIMER: the in-kernel LAPIC emulates TSC-deadline mode.
    public var tscDeadlineTimer: Bool

    public init(tscDeadlineTimer: Bool) {
        self.tscDeadlineTimer = tscDeadlineTimer
    }
}

/// Builds one vCPU's CPUID table from what KVM supports: APIC IDs and topology per vCPU (one
/// thread per core, all cores in one package), the hypervisor bit and leaf, the TSC-deadline
/// timer when KVM emulates it, a filtered set of KVM paravirtual features, and no nested
/// virtualization or performance-monitoring capabilities. A pure function, so tests feed it
/// synthetic tables.
public enum CPUIDFilter {
    static let leafFeatures: UInt32 = 0x1
    static let leafCacheParameters: UInt32 = 0x4
    static let leafExtendedTopology: UInt32 = 0xB
    static let leafExtendedTopologyV2: UInt32 = 0x1F
    static let leafHypervisor: UInt32 = 0x4000_0000
    static let leafKVMFeatures: UInt32 = 0x4000_0001
    static let leafAMDFeatures: UInt32 = 0x8000_0001
    static let leafAMDSizes: UInt32 = 0x8000_0008
    static let leafAMDTopology: UInt32 = 0x8000_001E

    static let ecxHypervisor: UInt32 = 1 << 31
    static let ecxVMX: UInt32 = 1 << 5
    /// Perfmon and debug capability (IA32_PERF_CAPABILITIES), which KVM's vPMU may not back.
    static let ecxPDCM: UInt32 = 1 << 15
    static let ecxTSCDeadline: UInt32 = 1 << 24
    static let ecxAMDSVM: UInt32 = 1 << 2
    static let edxHTT: UInt32 = 1 << 28

    /// Bits needed to number `count` items (the APIC ID shift of a topology level).
    static func bitsFor(_ count: UInt32) -> UInt32 {
        count <= 1 ? 0 : UInt32(32 - (count - 1).leadingZeroBitCount)
    }

    public static func filter(_ supported: [CPUIDEntry], vcpuID: UInt32, vcpuCount: UInt32,
                              host: CPUIDHost = CPUIDHost(tscDeadlineTimer: false)) -> [CPUIDEntry] {
        let apicID = vcpuID
        let coreShift = bitsFor(vcpuCount)
        return withCoreTopologyLevel(supported).map { original in
            var entry = original
            switch entry.function {
            case leafFeatures:
                // EBX: [31:24] initial APIC ID, [23:16] logical processors per package,
                // [15:8] CLFLUSH line size in 8-byte units.
                entry.ebx = (apicID << 24) | (min(vcpuCount, 255) << 16) | (8 << 8) | (entry.ebx & 0xFF)
                entry.ecx |= ecxHypervisor
                entry.ecx &= ~(ecxVMX | ecxPDCM)
                if host.tscDeadlineTimer { entry.ecx |= ecxTSCDeadline } else { entry.ecx &= ~ecxTSCDeadline }
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
            case leafKVMFeatures:
                entry.eax &= KVMParavirtFeatures.offered
                entry.edx = 0  // KVM_HINTS_REALTIME and later hints: nothing is pinned here
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

    /// KVM lists leaf 0xB only with the subleaves the host CPU reports; the topology set above
    /// needs both the SMT (0) and core (1) levels, so a missing core level is added after 0.
    static func withCoreTopologyLevel(_ table: [CPUIDEntry]) -> [CPUIDEntry] {
        var result = table
        for function in [leafExtendedTopology, leafExtendedTopologyV2] {
            guard let smt = result.firstIndex(where: { $0.function == function && $0.index == 0 }),
                  !result.contains(where: { $0.function == function && $0.index == 1 }) else { continue }
            var core = result[smt]
            core.index = 1
            core.flags |= CPUIDEntry.significantIndex
            result.insert(core, at: smt + 1)
        }
        return result
    }
}

/// KVM's paravirtual features (CPUID 0x40000001 EAX, Documentation/virt/kvm/x86/cpuid.rst) that
/// a kvmrun guest is offered; anything else KVM reports (and any bit a newer KVM adds) is hidden.
public enum KVMParavirtFeatures {
    public static let clocksource: UInt32 = 1 << 0
    public static let nopIODelay: UInt32 = 1 << 1
    public static let clocksource2: UInt32 = 1 << 3
    public static let asyncPF: UInt32 = 1 << 4
    public static let stealTime: UInt32 = 1 << 5
    public static let pvEOI: UInt32 = 1 << 6
    public static let pvUnhalt: UInt32 = 1 << 7
    public static let pvTLBFlush: UInt32 = 1 << 9
    public static let asyncPFVMExit: UInt32 = 1 << 10
    public static let pvSendIPI: UInt32 = 1 << 11
    public static let pollControl: UInt32 = 1 << 12
    public static let pvSchedYield: UInt32 = 1 << 13
    public static let asyncPFInt: UInt32 = 1 << 14
    public static let msiExtDestID: UInt32 = 1 << 15
    public static let clocksourceStable: UInt32 = 1 << 24

    /// kvmclock (both MSR sets, and its stable bit), steal time, PV EOI, PV unhalt, PV TLB flush,
    /// PV IPIs, poll control, PV yield and extended MSI destination IDs. Not offered: the
    /// asynchronous page-fault features (a guest that sleeps tasks on host page-ins needs shared
    /// per-vCPU state the VMM would have to save and restore with snapshots, for memory that
    /// kvmrun never swaps) and the deprecated MMU_OP.
    public static let offered: UInt32 = clocksource | nopIODelay | clocksource2 | stealTime | pvEOI
        | pvUnhalt | pvTLBFlush | pvSendIPI | pollControl | pvSchedYield | msiExtDestID | clocksourceStable
}
