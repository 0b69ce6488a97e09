import Memory
import Testing
@testable import VMM

@Suite("Machine layout and e820")
struct MachineLayoutTests {
    @Test func smallMemoryIsOneRegionAtZero() throws {
        let layout = try MachineLayout.ramLayout(memorySize: 128 * .mib)
        #expect(layout.count == 1)
        #expect(layout[0].base == GuestAddress(0))
        #expect(layout[0].size == 128 * .mib)
    }

    @Test func largeMemorySplitsAroundTheMMIOGap() throws {
        let layout = try MachineLayout.ramLayout(memorySize: 4 * .gib + 512 * .mib)
        #expect(layout.count == 2)
        #expect(layout[0].base.raw == 0 && layout[0].size == 3 * .gib)
        #expect(layout[1].base.raw == 4 * .gib && layout[1].size == 1 * .gib + 512 * .mib)
    }

    @Test func exactlyThreeGiBHasNoHighRegion() throws {
        let layout = try MachineLayout.ramLayout(memorySize: 3 * .gib)
        #expect(layout.count == 1)
    }

    @Test func memoryBelowMinimumIsRejected() {
        #expect(throws: BootError.memoryTooSmall(size: 16 * .mib, minimum: 32 * .mib)) {
            try MachineLayout.ramLayout(memorySize: 16 * .mib)
        }
        let message = BootError.memoryTooSmall(size: 16 * .mib, minimum: 32 * .mib).description
        #expect(message == "memory: 16 MiB of guest RAM is too small; kvmrun needs at least 32 MiB")
    }

    @Test func unalignedMemoryIsRejected() {
        #expect(throws: BootError.self) { try MachineLayout.ramLayout(memorySize: 64 * .mib + 100) }
    }

    @Test func e820ForSmallMemory() throws {
        let map = E820.map(ramLayout: try MachineLayout.ramLayout(memorySize: 128 * .mib))
        #expect(map == [
            E820Entry(address: 0, size: 0x9FC00, type: .ram),
            E820Entry(address: 0x9FC00, size: 0x10_0000 - 0x9FC00, type: .reserved),
            E820Entry(address: 0x10_0000, size: 128 * .mib - 0x10_0000, type: .ram),
        ])
    }

    @Test func e820ForLargeMemorySkipsTheGap() throws {
        let map = E820.map(ramLayout: try MachineLayout.ramLayout(memorySize: 6 * .gib))
        #expect(map.count == 4)
        #expect(map[2] == E820Entry(address: 0x10_0000, size: 3 * .gib - 0x10_0000, type: .ram))
        #expect(map[3] == E820Entry(address: 4 * .gib, size: 3 * .gib, type: .ram))
        // Nothing claims the MMIO gap.
        #expect(!map.contains { $0.address < MachineLayout.mmioGapEnd && $0.end > MachineLayout.mmioGapStart })
        // Sorted and non-overlapping.
        for (a, b) in zip(map, map.dropFirst()) { #expect(a.end <= b.address) }
    }

    @Test func largeGuestMemoryMapsWithoutReservingIt() throws {
        let memory = try TestMemory.make(4 * .gib + 512 * .mib)
        #expect(memory.regions.count == 2)
        #expect(memory.totalSize == 4 * .gib + 512 * .mib)
        #expect(try MachineLayout.lowRAMEnd(of: memory) == 3 * .gib)
    }
}
