import KVM
import Testing
@testable import VMM

@Suite("CPUID filtering")
struct CPUIDTests {
    let supported: [CPUIDEntry] = [
        CPUIDEntry(function: 0, eax: 0x1F, ebx: 0x756E_6547),
        CPUIDEntry(function: 1, eax: 0x806F8, ebx: 0xFF00_0000 | 0x00FF_0000, ecx: 1 << 5, edx: 0),
        CPUIDEntry(function: 4, index: 0, flags: 1, eax: 0x121),  // L1 data
        CPUIDEntry(function: 4, index: 3, flags: 1, eax: 0x163),  // L3 unified
        CPUIDEntry(function: 0xB, index: 0, flags: 1),
        CPUIDEntry(function: 0xB, index: 1, flags: 1),
        CPUIDEntry(function: 0xB, index: 2, flags: 1),
        CPUIDEntry(function: 0x4000_0000, eax: 0x4000_0001),
        CPUIDEntry(function: 0x8000_0001, ecx: 1 << 2),
        CPUIDEntry(function: 0x8000_0008, ecx: 0xFF),
    ]

    func leaf(_ table: [CPUIDEntry], _ function: UInt32, _ index: UInt32 = 0) -> CPUIDEntry {
        table.first { $0.function == function && $0.index == index }!
    }

    @Test("leaf 1 carries each vCPU's APIC ID and the CPU count; hypervisor on, VMX off")
    func leafOne() {
        for id in UInt32(0)..<3 {
            let table = CPUIDFilter.filter(supported, vcpuID: id, vcpuCount: 3)
            let entry = leaf(table, 1)
            #expect(entry.ebx >> 24 == id)
            #expect((entry.ebx >> 16) & 0xFF == 3)
            #expect((entry.ebx >> 8) & 0xFF == 8)
            #expect(entry.ecx & (1 << 31) != 0)
            #expect(entry.ecx & (1 << 5) == 0)
            #expect(entry.edx & (1 << 28) != 0)
        }
        #expect(leaf(CPUIDFilter.filter(supported, vcpuID: 0, vcpuCount: 1), 1).edx & (1 << 28) == 0)
    }

    @Test("extended topology: one thread per core, all vCPUs at the core level, x2APIC ID in EDX")
    func topology() {
        let table = CPUIDFilter.filter(supported, vcpuID: 2, vcpuCount: 4)
        let smt = leaf(table, 0xB, 0), core = leaf(table, 0xB, 1), end = leaf(table, 0xB, 2)
        #expect(smt.ebx == 1 && smt.eax == 0 && (smt.ecx >> 8) & 0xFF == 1)
        #expect(core.ebx == 4 && core.eax == 2 && (core.ecx >> 8) & 0xFF == 2)
        #expect(end.ebx == 0 && (end.ecx >> 8) & 0xFF == 0)
        #expect(smt.edx == 2 && core.edx == 2)
        #expect(leaf(table, 4, 0).eax >> 26 == 3)
        #expect((leaf(table, 4, 3).eax >> 14) & 0xFFF == 3, "L3 shared by all four")
        #expect((leaf(table, 4, 0).eax >> 14) & 0xFFF == 0, "L1 per core")
        #expect(leaf(table, 0x8000_0008).ecx & 0xFF == 3)
    }

    @Test("the hypervisor leaf says KVMKVMKVM; SVM is hidden")
    func hypervisorLeaf() {
        let table = CPUIDFilter.filter(supported, vcpuID: 0, vcpuCount: 1)
        let entry = leaf(table, 0x4000_0000)
        var signature: [UInt8] = []
        for register in [entry.ebx, entry.ecx, entry.edx] {
            for shift in stride(from: 0, to: 32, by: 8) { signature.append(UInt8((register >> UInt32(shift)) & 0xFF)) }
        }
        #expect(String(decoding: signature.prefix(9), as: UTF8.self) == "KVMKVMKVM")
        #expect(leaf(table, 0x8000_0001).ecx & (1 << 2) == 0)
    }

    @Test("TSC-deadline is announced exactly when KVM emulates it; PDCM is hidden")
    func tscDeadlineAndPDCM() {
        var table = supported
        table[1].ecx |= (1 << 15) | (1 << 24)
        let without = leaf(CPUIDFilter.filter(table, vcpuID: 0, vcpuCount: 2, host: CPUIDHost(tscDeadlineTimer: false)), 1)
        let with = leaf(CPUIDFilter.filter(supported, vcpuID: 1, vcpuCount: 2, host: CPUIDHost(tscDeadlineTimer: true)), 1)
        #expect(without.ecx & (1 << 24) == 0)
        #expect(with.ecx & (1 << 24) != 0)
        #expect(without.ecx & (1 << 15) == 0)
    }

    @Test("leaf 0x40000001 keeps only the paravirtual features kvmrun offers and no hints")
    func paravirtFeatures() {
        var table = supported
        table.append(CPUIDEntry(function: 0x4000_0001, eax: 0xFFFF_FFFF, edx: 1))
        let entry = leaf(CPUIDFilter.filter(table, vcpuID: 0, vcpuCount: 2), 0x4000_0001)
        #expect(entry.eax == KVMParavirtFeatures.offered)
        #expect(entry.eax & KVMParavirtFeatures.clocksource2 != 0)
        #expect(entry.eax & (KVMParavirtFeatures.asyncPF | KVMParavirtFeatures.asyncPFInt) == 0)
        #expect(entry.eax & (1 << 2) == 0, "MMU_OP (deprecated) and unknown bits are dropped")
        #expect(entry.edx == 0)
    }

    @Test("a leaf 0xB with only its SMT subleaf gets a core subleaf, so 2+ vCPUs have a topology")
    func missingCoreLevel() {
        let table = supported.filter { !($0.function == 0xB && $0.index > 0) }
        let filtered = CPUIDFilter.filter(table, vcpuID: 1, vcpuCount: 2)
        let core = leaf(filtered, 0xB, 1)
        #expect(core.ebx == 2 && core.eax == 1 && (core.ecx >> 8) & 0xFF == 2 && core.edx == 1)
        #expect(core.flags & CPUIDEntry.significantIndex != 0)
        #expect(filtered.count == table.count + 1)
        let none = supported.filter { $0.function != 0xB }
        #expect(CPUIDFilter.filter(none, vcpuID: 0, vcpuCount: 2).count == none.count, "no leaf 0xB is invented")
    }
}
