import Memory
import Testing
@testable import VMM

@Suite("Linux loader")
struct LinuxLoaderTests {
    @Test func bootsABzImageFixture() throws {
        let memory = try TestMemory.make(128 * .mib)
        let initrd = [UInt8](repeating: 0x5A, count: 3 * 4096 + 100)
        let setup = try loadLinux(BootConfig(kernel: BzImageFixture().bytes(), initrd: initrd,
                                             commandLine: "console=ttyS0", cpus: 2), into: memory)
        #expect(setup.format == .bzImage)
        #expect(setup.kernelEnd == GuestAddress(0x140_0000))
        #expect(setup.cpu == BootCPUState.longMode(entry: GuestAddress(0x10_0200), zeroPage: GuestAddress(0x7000)))

        // initrd: page-aligned, as high as possible in 128 MiB.
        let (address, size) = try #require(setup.initrd)
        #expect(size == UInt64(initrd.count))
        #expect(address.raw == (128 * .mib - size) & ~0xFFF)
        #expect(try memory.read(count: initrd.count, at: address) == initrd)

        let page = try memory.read(count: 4096, at: GuestAddress(0x7000))
        #expect(page.readLE(UInt32.self, at: 0x228) == 0x20000)
        #expect(page.readLE(UInt32.self, at: 0x218) == UInt32(address.raw))
        #expect(page.readLE(UInt32.self, at: 0x21C) == UInt32(size))
        #expect(page[0x210] == 0xFF)
        #expect(page[0x1E8] == 3)
        #expect(try memory.read(count: 14, at: GuestAddress(0x20000)) == Array("console=ttyS0\0".utf8))
        #expect(try memory.read(count: 4, at: GuestAddress(0x9FC00)) == Array("_MP_".utf8))
        #expect(try memory.load(UInt64.self, at: GuestAddress(0x9000)) == 0xA003)
        #expect(try memory.load(UInt64.self, at: GuestAddress(0x508)) == 0x00AF_9B00_0000_FFFF)
    }

    @Test func bootsAnELFWith64BitEntry() throws {
        let memory = try TestMemory.make(64 * .mib)
        let setup = try loadLinux(BootConfig(kernel: ElfFixture().bytes(), commandLine: "quiet"), into: memory)
        #expect(setup.format == .elf64)
        #expect(setup.cpu.rip == 0x100_0000)
        #expect(setup.cpu.rsi == 0x7000)
        #expect(setup.kernelEnd == GuestAddress(0x100_3000))
        #expect(setup.initrd == nil)
        let page = try memory.read(count: 4096, at: GuestAddress(0x7000))
        #expect(page.readLE(UInt32.self, at: 0x202) == 0x5372_6448)
        #expect(page.readLE(UInt32.self, at: 0x218) == 0)
    }

    @Test func bootsAnELFThroughPVH() throws {
        var fixture = ElfFixture()
        fixture.pvhEntry = 0x100_0040
        let memory = try TestMemory.make(64 * .mib)
        let initrd = [UInt8](repeating: 7, count: 8192)
        let setup = try loadLinux(BootConfig(kernel: fixture.bytes(), initrd: initrd, commandLine: "pvh", cpus: 1),
                                  into: memory)
        #expect(setup.format == .elfPVH)
        #expect(setup.cpu == BootCPUState.pvh(entry: GuestAddress(0x100_0040), startInfo: GuestAddress(0x6000)))
        let (initrdAddress, _) = try #require(setup.initrd)

        let info = try memory.read(count: PVHStartInfo.size, at: GuestAddress(0x6000))
        #expect(info.readLE(UInt32.self, at: 0) == 0x336E_C578)
        #expect(info.readLE(UInt32.self, at: 4) == 1)
        #expect(info.readLE(UInt32.self, at: 12) == 1)                          // nr_modules
        let modlist = info.readLE(UInt64.self, at: 16)!
        #expect(info.readLE(UInt64.self, at: 24) == 0x20000)                    // cmdline
        #expect(info.readLE(UInt64.self, at: 32) == 0)                          // no RSDP
        let memmap = info.readLE(UInt64.self, at: 40)!
        #expect(info.readLE(UInt32.self, at: 48) == 3)

        let module = try memory.read(count: 32, at: GuestAddress(modlist))
        #expect(module.readLE(UInt64.self, at: 0) == initrdAddress.raw)
        #expect(module.readLE(UInt64.self, at: 8) == 8192)
        let map = try memory.read(count: 3 * 24, at: GuestAddress(memmap))
        #expect(map.readLE(UInt64.self, at: 24) == 0x9FC00)                    // reserved entry
        #expect(map.readLE(UInt32.self, at: 24 + 16) == 2)
        #expect(map.readLE(UInt64.self, at: 48 + 8) == 64 * .mib - 0x10_0000)
        // The areas do not run into the zero page.
        #expect(MachineLayout.pvhModlist.raw + 32 <= MachineLayout.zeroPage.raw)
        #expect(try memory.load(UInt64.self, at: GuestAddress(0x508)) == 0x00CF_9B00_0000_FFFF)
    }

    @Test func initrdPlacementHonoursInitrdAddrMax() throws {
        let address = try InitrdPlacement.address(size: 0x1800, addressMax: 0x1FF_FFFF,
                                                  kernelEnd: 0x140_0000, lowRAMEnd: 3 * .gib)
        #expect(address == GuestAddress(0x1FF_E000))
    }

    @Test func initrdJustAboveTheKernel() throws {
        let address = try InitrdPlacement.address(size: 0x400_0000 - 0x140_0000, addressMax: 0x7FFF_FFFF,
                                                  kernelEnd: 0x140_0000, lowRAMEnd: 64 * .mib)
        #expect(address == GuestAddress(0x140_0000))
    }

    @Test func initrdTooLarge() throws {
        let memory = try TestMemory.make(64 * .mib)
        let initrd = [UInt8](repeating: 1, count: Int(48 * .mib))
        let error = #expect(throws: BootError.self) {
            try loadLinux(BootConfig(kernel: BzImageFixture().bytes(), initrd: initrd), into: memory)
        }
        #expect(error == .initrdTooLarge(size: 48 * .mib, limit: GuestAddress(64 * .mib), kernelEnd: GuestAddress(0x140_0000)))
        #expect(error?.description == "initrd (48 MiB) does not fit in guest memory below 0x4000000 and above the kernel's end at 0x1400000")
    }

    @Test func initrdLargerThanAllMemory() {
        #expect(throws: BootError.self) {
            try InitrdPlacement.address(size: 4 * .gib, addressMax: 0xFFFF_FFFF, kernelEnd: 0, lowRAMEnd: 3 * .gib)
        }
    }

    @Test func memoryTooSmall() throws {
        let memory = try GuestMemory(layout: [(GuestAddress(0), 16 * .mib)])
        #expect(throws: BootError.memoryTooSmall(size: 16 * .mib, minimum: 32 * .mib)) {
            try loadLinux(BootConfig(kernel: BzImageFixture().bytes()), into: memory)
        }
    }

    @Test func notAKernel() throws {
        let memory = try TestMemory.make(32 * .mib)
        #expect(throws: BootError.notALinuxKernel) {
            try loadLinux(BootConfig(kernel: Array("#!/bin/sh\necho hi\n".utf8)), into: memory)
        }
    }

    @Test func commandLineOverKernelLimit() throws {
        var fixture = BzImageFixture()
        fixture.cmdlineSize = 255
        let memory = try TestMemory.make(32 * .mib)
        #expect(throws: BootError.commandLine("300 bytes exceed the kernel's cmdline_size of 255 bytes")) {
            try loadLinux(BootConfig(kernel: fixture.bytes(), commandLine: String(repeating: "x", count: 300)), into: memory)
        }
    }

    @Test func tooManyCPUs() throws {
        let memory = try TestMemory.make(32 * .mib)
        #expect(throws: BootError.self) { try loadLinux(BootConfig(kernel: BzImageFixture().bytes(), cpus: 255), into: memory) }
    }
}
