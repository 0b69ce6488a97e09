import Memory
import Testing
@testable import VMM

@Suite("Guest RAM host alignment")
struct GuestMemoryAlignmentTests {
    @Test("every region is mapped at a 2 MiB-aligned host address, so 2 MiB guest pages can be huge pages")
    func aligned() throws {
        for size: UInt64 in [64 * .mib, 128 * .mib + 4096, 3 * .gib + 512 * .mib] {
            let memory = try TestMemory.make(size)
            for region in memory.regions {
                #expect(region.hostAddress % GuestMemory.hostAlignment == 0, "\(region)")
            }
            // The whole range is usable: first and last byte of every region.
            for region in memory.regions {
                try memory.store(UInt8(0xA5), at: region.guestBase)
                try memory.store(UInt8(0x5A), at: GuestAddress(region.guestEnd - 1))
                #expect(try memory.load(UInt8.self, at: GuestAddress(region.guestEnd - 1)) == 0x5A)
            }
        }
        let hotplug = try GuestMemory(layout: [], hotplug: [(GuestAddress(4 * .gib), 256 * .mib)])
        #expect(hotplug.regions[0].hostAddress % GuestMemory.hostAlignment == 0)
    }
}
