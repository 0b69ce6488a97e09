import Memory
import Testing
@testable import VMM

@Suite("--memory hotplug option and region placement")
struct HotplugOptionTests {
    @Test("boot RAM alone, and hotplug with defaults and every key")
    func valid() throws {
        let (ram, none) = try HotplugOption.parseMemory("256M")
        #expect(ram == 256 * .mib && none == nil)

        let (ram2, plain) = try HotplugOption.parseMemory("256M,hotplug=2G")
        #expect(ram2 == 256 * .mib)
        #expect(plain == HotplugOption(regionSize: 2 * .gib, blockSize: 2 * .mib, requestedSize: 0))

        let (_, full) = try HotplugOption.parseMemory("1G,hotplug=1G,block=4M,requested=512M")
        #expect(full == HotplugOption(regionSize: 1 * .gib, blockSize: 4 * .mib, requestedSize: 512 * .mib))

        let (_, bigBlock) = try HotplugOption.parseMemory("128M,requested=1G,hotplug=2G,block=1G")
        #expect(bigBlock == HotplugOption(regionSize: 2 * .gib, blockSize: 1 * .gib, requestedSize: 1 * .gib))
    }

    @Test("thp=on|off: huge pages for boot RAM by default, off on request, with or without hotplug")
    func transparentHugePages() throws {
        #expect(try HotplugOption.parseMemoryOption("256M").hugePages)
        #expect(try HotplugOption.parseMemoryOption("256M,thp=on").hugePages)
        let small = try HotplugOption.parseMemoryOption("256M,thp=off")
        #expect(small.ram == 256 * .mib && small.hotplug == nil && !small.hugePages)
        let both = try HotplugOption.parseMemoryOption("256M,hotplug=2G,thp=off")
        #expect(both.hotplug == HotplugOption(regionSize: 2 * .gib) && !both.hugePages)
        #expect(try HotplugOption.parseMemory("256M,thp=off") == (256 * .mib, nil))
    }

    static let invalid: [(String, String)] = [
        ("256M,hotplug=2G,block=3M", "block=3 MiB must be a power of two of at least 2 MiB"),
        ("256M,hotplug=2G,block=1M", "power of two of at least 2 MiB"),
        ("256M,hotplug=100M", "hotplug=100 MiB must be a multiple of 128 MiB"),
        ("256M,hotplug=0", "hotplug=0 bytes must be between 128 MiB"),
        ("256M,hotplug=1T", "must be between 128 MiB and 512 GiB"),
        ("256M,hotplug=384M,block=256M", "hotplug=384 MiB must be a multiple of block=256 MiB"),
        ("256M,hotplug=1G,requested=2G", "requested=2 GiB is larger than the hotplug region (1 GiB)"),
        ("256M,hotplug=1G,requested=3M", "requested=3 MiB is not a multiple of the block size (2 MiB)"),
        ("256M,hotplug=1G,size=2G", "unknown key 'size' (keys: hotplug, block, requested, thp)"),
        ("256M,thp=maybe", "thp= must be on or off (got 'maybe')"),
        ("256M,thp=off,thp=on", "thp= given twice"),
        ("256M,thp=off,block=2M", "need hotplug=SIZE"),
        ("256M,hotplug=1G,hotplug=2G", "hotplug= given twice"),
        ("256M,block=2M", "need hotplug=SIZE"),
        ("256M,", "'' is not KEY=VALUE"),
        ("256M,hotplug", "'hotplug' is not KEY=VALUE"),
        ("256M,hotplug=lots", "hotplug= 'lots' is not a size"),
        ("lots,hotplug=1G", "RAM size 'lots' is not a size"),
    ]

    @Test("bad hotplug options are refused with a message naming the problem", arguments: invalid)
    func refused(text: String, message: String) {
        do {
            _ = try HotplugOption.parseMemory(text)
            Issue.record("'\(text)' was accepted")
        } catch {
            #expect(error.description.hasPrefix("--memory: "), "\(error)")
            #expect(error.description.contains(message), "\(error)")
        }
    }

    @Test("the region goes at or above 4 GiB, above all boot RAM, 1 GiB-aligned")
    func placement() throws {
        for (ram, expected) in [(256 * UInt64.mib, 4 * UInt64.gib), (3 * .gib, 4 * .gib),
                                (4 * .gib, 5 * .gib), (4 * .gib + 128 * .mib, 6 * .gib)] {
            let layout = try MachineLayout.ramLayout(memorySize: ram)
            #expect(MachineLayout.hotplugBase(bootLayout: layout).raw == expected, "\(ram >> 20) MiB")
        }
    }

    @Test("guest memory holds the hotplug region, but the boot memory map does not")
    func guestMemory() throws {
        var config = VMConfig(kernelPath: "/nonexistent", memorySize: 256 * .mib)
        config.devices.hotplug = HotplugOption(regionSize: 1 * .gib, requestedSize: 512 * .mib)
        let memory = try Machine.makeGuestMemory(config)
        #expect(memory.regions.count == 2)
        #expect(memory.isValid(GuestAddress(4 * .gib), length: 1 * .gib), "devices can reach hotplugged memory")
        #expect(memory.bootRegions.map(\.guestEnd) == [256 * .mib])
        // The loader's e820 table in the zero page (count at 0x1e8, 20-byte entries at 0x2d0).
        _ = try loadLinux(BootConfig(kernel: BzImageFixture().bytes()), into: memory)
        let page = try memory.read(count: 4096, at: MachineLayout.zeroPage)
        #expect(page[0x1E8] == 3, "low RAM, the EBDA hole, RAM from 1 MiB: nothing at 4 GiB")
        for index in 0..<Int(page[0x1E8]) {
            let address = try #require(page.readLE(UInt64.self, at: 0x2D0 + 20 * index))
            let size = try #require(page.readLE(UInt64.self, at: 0x2D8 + 20 * index))
            #expect(address + size <= 256 * .mib)
        }
        #expect(try memory.residentBytes(at: GuestAddress(4 * .gib), length: 1 * .gib) == 0,
                "the region costs no host memory until the guest touches it")

        config.devices.hotplug = HotplugOption(regionSize: 1 * .gib, requestedSize: 2 * .gib)
        #expect(throws: VMMError.self) { try Machine.makeGuestMemory(config) }
    }
}
