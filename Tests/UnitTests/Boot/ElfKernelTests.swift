import Memory
import Testing
@testable import VMM

@Suite("ELF vmlinux")
struct ElfKernelTests {
    @Test func parsesWithoutPVHNote() throws {
        let elf = try ElfKernel.parse(ElfFixture().bytes())
        #expect(elf.pvhEntry == nil)
        #expect(elf.segments.count == 1)
        #expect(elf.segments[0].physicalAddress == 0x100_0000)
        #expect(elf.segments[0].memorySize == 0x3000)
        #expect(try elf.physicalEntry() == 0x100_0000)
        #expect(elf.kernelEnd == 0x100_3000)
    }

    @Test(arguments: [4, 8])
    func findsThePVHNote(descSize: Int) throws {
        var fixture = ElfFixture()
        fixture.pvhEntry = 0x100_0100
        fixture.pvhDescSize = descSize
        let elf = try ElfKernel.parse(fixture.bytes())
        #expect(elf.pvhEntry == 0x100_0100)
    }

    @Test func badPVHNoteSize() {
        var fixture = ElfFixture()
        fixture.pvhEntry = 0x100_0100
        fixture.pvhDescSize = 2
        let error = #expect(throws: BootError.self) { try ElfKernel.parse(fixture.bytes()) }
        #expect(error?.description.contains("2-byte value") == true)
    }

    @Test func pvhEntryOutsideTheKernel() {
        var fixture = ElfFixture()
        fixture.pvhEntry = 0x200_0000
        #expect(throws: BootError.self) { try ElfKernel.parse(fixture.bytes()) }
    }

    @Test func translatesAVirtualEntry() throws {
        var fixture = ElfFixture()
        fixture.entry = 0xFFFF_FFFF_8100_0200
        let elf = try ElfKernel.parse(fixture.bytes())
        #expect(try elf.physicalEntry() == 0x100_0200)
    }

    @Test func entryOutsideSegments() throws {
        var fixture = ElfFixture()
        fixture.entry = 0x500_0000
        let elf = try ElfKernel.parse(fixture.bytes())
        #expect(throws: BootError.elf("e_entry 0x5000000 lies in no PT_LOAD segment")) { try elf.physicalEntry() }
    }

    @Test func truncatedHeader() {
        let bytes = Array(ElfFixture().bytes()[0..<40])
        #expect(throws: BootError.elf("file is 40 bytes, shorter than the 64-byte ELF header")) {
            try ElfKernel.parse(bytes)
        }
    }

    @Test func truncatedProgramHeaders() {
        let bytes = Array(ElfFixture().bytes()[0..<100])
        let error = #expect(throws: BootError.self) { try ElfKernel.parse(bytes) }
        #expect(error?.description.contains("extend past the end of the file (100 bytes)") == true)
    }

    @Test func truncatedSegmentData() {
        let full = ElfFixture().bytes()
        let error = #expect(throws: BootError.self) { try ElfKernel.parse(Array(full.dropLast(10))) }
        #expect(error?.description.contains("extend past the end of the file") == true)
    }

    @Test func segmentOffsetPastEOF() {
        var fixture = ElfFixture()
        fixture.badOffset = (0, 1 << 40)
        let error = #expect(throws: BootError.self) { try ElfKernel.parse(fixture.bytes()) }
        #expect(error?.description.contains("program header 1") == true)
    }

    @Test func badMachine() {
        var fixture = ElfFixture()
        fixture.machine = 183   // aarch64
        #expect(throws: BootError.elf("e_machine 183 is not EM_X86_64 (62)")) { try ElfKernel.parse(fixture.bytes()) }
    }

    @Test func thirtyTwoBitClass() {
        var fixture = ElfFixture()
        fixture.elfClass = 1
        let error = #expect(throws: BootError.self) { try ElfKernel.parse(fixture.bytes()) }
        #expect(error?.description.contains("ELFCLASS64") == true)
    }

    @Test func sharedObjectType() {
        var fixture = ElfFixture()
        fixture.type = 3
        #expect(throws: BootError.elf("e_type 3 is not ET_EXEC (2)")) { try ElfKernel.parse(fixture.bytes()) }
    }

    @Test func fileSizeAboveMemorySize() {
        var fixture = ElfFixture()
        fixture.segments[0].memorySize = 16
        let error = #expect(throws: BootError.self) { try ElfKernel.parse(fixture.bytes()) }
        #expect(error?.description.contains("p_filesz 0x1000 exceeds p_memsz 0x10") == true)
    }

    @Test func absurdMemorySizeOverflows() {
        var fixture = ElfFixture()
        fixture.segments[0].memorySize = UInt64.max - 10
        #expect(throws: BootError.self) { try ElfKernel.parse(fixture.bytes()) }
    }

    @Test func overlappingSegments() {
        var fixture = ElfFixture()
        fixture.segments.append(.init(physical: 0x100_2000, virtual: 0, data: [1, 2, 3], memorySize: 0x1000))
        let error = #expect(throws: BootError.self) { try ElfKernel.parse(fixture.bytes()) }
        #expect(error?.description.contains("overlap") == true)
    }

    @Test func segmentInTheBootArea() {
        var fixture = ElfFixture()
        fixture.segments[0].physical = 0x8000
        let error = #expect(throws: BootError.self) { try ElfKernel.parse(fixture.bytes()) }
        #expect(error?.description.contains("below 1 MiB") == true)
    }

    @Test func loadsSegmentsAndZeroesBSS() throws {
        let file = ElfFixture().bytes()
        let elf = try ElfKernel.parse(file)
        let memory = try TestMemory.make(64 * .mib)
        try memory.write([UInt8](repeating: 0xEE, count: 0x3000), at: GuestAddress(0x100_0000))
        try elf.load(from: file, into: memory)
        #expect(try memory.read(count: 4096, at: GuestAddress(0x100_0000)).allSatisfy { $0 == 0xCC })
        #expect(try memory.read(count: 0x2000, at: GuestAddress(0x100_1000)).allSatisfy { $0 == 0 })
    }

    @Test func segmentOutsideGuestRAM() throws {
        var fixture = ElfFixture()
        fixture.segments[0].physical = 0x1000_0000   // 256 MiB, beyond 64 MiB of RAM
        fixture.entry = 0x1000_0000
        let file = fixture.bytes()
        let elf = try ElfKernel.parse(file)
        let memory = try TestMemory.make(64 * .mib)
        let error = #expect(throws: BootError.self) { try elf.load(from: file, into: memory) }
        #expect(error?.description.contains("outside guest RAM") == true)
    }

    @Test func formatDetection() throws {
        #expect(throws: BootError.notALinuxKernel) { try KernelImage.detect([UInt8](repeating: 0, count: 4096)) }
        #expect(throws: BootError.notALinuxKernel) { try KernelImage.detect([]) }
        #expect(BootError.notALinuxKernel.description == "KERNEL: not a Linux kernel (no ELF magic, no bzImage setup header)")
        guard case .elf = try KernelImage.detect(ElfFixture().bytes()) else { Issue.record("ELF not detected"); return }
        guard case .bzImage = try KernelImage.detect(BzImageFixture().bytes()) else { Issue.record("bzImage not detected"); return }
    }
}
