import Memory
import Sys
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

    /// The kernel's record of each mapping's advice (/proc/self/smaps VmFlags: hg for
    /// MADV_HUGEPAGE, nh for MADV_NOHUGEPAGE) for the region at `hostAddress`.
    static func adviceFlags(_ hostAddress: UInt) throws -> Set<String> {
        let smaps = try #require(readTextFile("/proc/self/smaps"))
        var inside = false
        for line in smaps.split(separator: "\n") {
            if let dash = line.firstIndex(of: "-"), let start = UInt(line[..<dash], radix: 16), line.contains(" ") {
                inside = start == hostAddress
            } else if inside, line.hasPrefix("VmFlags:") {
                return Set(line.dropFirst("VmFlags:".count).split(separator: " ").map(String.init)).intersection(["hg", "nh"])
            }
        }
        Issue.record("no mapping at \(String(hostAddress, radix: 16)) in /proc/self/smaps")
        return []
    }

    @Test("boot RAM is advised onto huge pages by default (thp=on) and kept on small pages with thp=off; hotplug regions get no advice")
    func hugePageAdvice() throws {
        let layout = [(GuestAddress(0), 64 * .mib)]
        let huge = try GuestMemory(layout: layout, hotplug: [(GuestAddress(4 * .gib), 128 * .mib)])
        let small = try GuestMemory(layout: layout, hugePages: false)
        #expect(try Self.adviceFlags(huge.regions[0].hostAddress) == ["hg"])
        #expect(try Self.adviceFlags(huge.regions[1].hostAddress) == [])
        #expect(try Self.adviceFlags(small.regions[0].hostAddress) == ["nh"])
    }
}
