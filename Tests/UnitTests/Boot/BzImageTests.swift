import Memory
import Testing
@testable import VMM

@Suite("bzImage setup header")
struct BzImageTests {
    @Test func parsesAGoodHeader() throws {
        let image = try BzImage.parse(BzImageFixture().bytes())
        #expect(image.header.setupSectors == 4)
        #expect(image.kernelOffset == 5 * 512)
        #expect(image.kernelSize == 8192)
        #expect(image.header.version == 0x020F)
        #expect(image.header.relocatable)
        #expect(image.header.canBeLoadedAbove4G)
        #expect(image.header.cmdlineSize == 2047)
        #expect(image.header.initrdAddrMax == 0x7FFF_FFFF)
        #expect(image.header.prefAddress == 0x100_0000)
        #expect(image.header.initSize == 0x40_0000)
    }

    @Test func zeroSetupSectsMeansFour() throws {
        var fixture = BzImageFixture()
        fixture.setupSects = 0
        let image = try BzImage.parse(fixture.bytes())
        #expect(image.header.setupSectors == 4)
        #expect(image.kernelOffset == 2560)
    }

    @Test func otherSetupSectCounts() throws {
        var fixture = BzImageFixture()
        fixture.setupSects = 31
        let image = try BzImage.parse(fixture.bytes())
        #expect(image.kernelOffset == 32 * 512)
    }

    /// Found by the boot fuzz target: a fixed (non-relocatable) kernel whose pref_address +
    /// init_size passes 2^64 trapped in kernelEnd while loading; it is a clear error now.
    @Test("pref_address + init_size past 2^64 is refused, not an arithmetic trap")
    func runtimeBufferOverflow() throws {
        var fixture = BzImageFixture()
        fixture.relocatable = 0
        fixture.prefAddress = 0xFFFF_FFFF_FFF0_0000
        fixture.initSize = 0x40_0000
        #expect(throws: BootError.bzImage("pref_address 0xfffffffffff00000 + init_size 0x400000 overflows")) {
            try BzImage.parse(fixture.bytes())
        }
        let memory = try GuestMemory(layout: [(GuestAddress(0), MachineLayout.minimumMemory)])
        #expect(throws: BootError.bzImage("pref_address 0xfffffffffff00000 + init_size 0x400000 overflows")) {
            try loadLinux(BootConfig(kernel: fixture.bytes()), into: memory)
        }
        // Relocatable: the runtime address is the load address rounded up, which can be huge too.
        let image = try BzImage.parse(BzImageFixture().bytes())
        #expect(image.kernelEnd(loadAddress: UInt64.max - 4096) == UInt64.max)
    }

    @Test func badMagic() {
        var fixture = BzImageFixture()
        fixture.magic = Array("NoPe".utf8)
        #expect(throws: BootError.bzImage("setup header magic missing (not a Linux kernel?)")) {
            try BzImage.parse(fixture.bytes())
        }
    }

    @Test func badBootFlag() {
        var fixture = BzImageFixture()
        fixture.bootFlag = 0x1234
        #expect(throws: BootError.bzImage("boot_flag at 0x1FE is 0x1234, expected 0xaa55")) {
            try BzImage.parse(fixture.bytes())
        }
    }

    @Test func oldProtocolVersion() {
        var fixture = BzImageFixture()
        fixture.version = 0x0206
        #expect(throws: BootError.bzImage("boot protocol 2.06 is too old; kvmrun needs 2.12 or later (64-bit entry point)")) {
            try BzImage.parse(fixture.bytes())
        }
    }

    @Test func notSixtyFourBit() {
        var fixture = BzImageFixture()
        fixture.xloadFlags = 0
        let error = #expect(throws: BootError.self) { try BzImage.parse(fixture.bytes()) }
        #expect(error?.description.contains("XLF_KERNEL_64") == true)
    }

    @Test func notLoadedHigh() {
        var fixture = BzImageFixture()
        fixture.loadFlags = 0
        let error = #expect(throws: BootError.self) { try BzImage.parse(fixture.bytes()) }
        #expect(error?.description.contains("LOADED_HIGH") == true)
    }

    @Test func truncatedFileNamesBothSizes() {
        var fixture = BzImageFixture()
        fixture.sysSize = 1024   // promises 16 KiB, file holds 8 KiB
        let error = #expect(throws: BootError.self) { try BzImage.parse(fixture.bytes()) }
        #expect(error?.description == "bzImage: file is truncated: 10752 bytes, but the setup header promises 18944 "
            + "((setup_sects 4 + 1) * 512 + syssize 1024 * 16)")
    }

    @Test func tinyFile() {
        var file = [UInt8](repeating: 0, count: 0x300)
        file.writeBytes(Array("HdrS".utf8), at: 0x202)
        let error = #expect(throws: BootError.self) { try BzImage.parse(file) }
        #expect(error?.description.contains("too short") == true)
    }

    @Test func shortHeaderLength() {
        var fixture = BzImageFixture()
        fixture.headerLengthByte = 0x30
        let error = #expect(throws: BootError.self) { try BzImage.parse(fixture.bytes()) }
        #expect(error?.description.contains("setup header ends at 0x232") == true)
    }

    @Test func badKernelAlignment() {
        var fixture = BzImageFixture()
        fixture.kernelAlignment = 0x30_0000
        #expect(throws: BootError.self) { try BzImage.parse(fixture.bytes()) }
    }

    @Test func runtimeAddressAndKernelEnd() throws {
        let image = try BzImage.parse(BzImageFixture().bytes())
        // Relocatable, loaded at 1 MiB: rounds up to 2 MiB, then at least pref_address (16 MiB).
        #expect(image.runtimeAddress(loadAddress: 0x10_0000) == 0x100_0000)
        #expect(image.kernelEnd(loadAddress: 0x10_0000) == 0x140_0000)
        var fixture = BzImageFixture()
        fixture.prefAddress = 0x10_0000
        let low = try BzImage.parse(fixture.bytes())
        #expect(low.runtimeAddress(loadAddress: 0x10_0000) == 0x20_0000)
    }

    @Test func loadsThePayloadAtOneMiB() throws {
        let file = BzImageFixture().bytes()
        let image = try BzImage.parse(file)
        let memory = try TestMemory.make(64 * .mib)
        let end = try image.load(from: file, into: memory, lowRAMEnd: 64 * .mib)
        #expect(end == GuestAddress(0x140_0000))
        #expect(try memory.read(count: 8192, at: GuestAddress(0x10_0000)) == Array(file[2560...]))
    }

    @Test func initSizeLargerThanMemory() throws {
        var fixture = BzImageFixture()
        fixture.initSize = 0x400_0000   // 64 MiB from 16 MiB
        let file = fixture.bytes()
        let image = try BzImage.parse(file)
        let memory = try TestMemory.make(64 * .mib)
        let error = #expect(throws: BootError.self) { try image.load(from: file, into: memory, lowRAMEnd: 64 * .mib) }
        #expect(error?.description.contains("init_size 64 MiB") == true)
        #expect(error?.description.contains("low RAM ends at 0x4000000") == true)
    }
}
