#if canImport(Glibc)
import Glibc
#endif
import Memory
import Testing
@testable import VMM

/// A source that records which byte ranges the loader asked for.
final class RecordingSource: KernelSource {
    let bytes: [UInt8]
    private(set) var reads: [Range<UInt64>] = []
    init(_ bytes: [UInt8]) { self.bytes = bytes }
    var size: UInt64 { bytes.size }
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64, what: String) throws(BootError) {
        reads.append(offset..<(offset + UInt64(buffer.count)))
        try bytes.read(into: buffer, at: offset, what: what)
    }
    var bytesRead: UInt64 { reads.reduce(0) { $0 + UInt64($1.count) } }
}

/// Kernel and initrd files read by offset (pread) into guest RAM: only an ELF's headers,
/// notes and PT_LOAD bytes, every range checked against the file's size first.
@Suite("Kernel files read by segment")
struct KernelFileTests {
    static func temporaryFile(_ bytes: [UInt8]) -> String {
        var template = Array("/tmp/kvmrun-kernelfile-XXXXXX".utf8CString)
        let fd = mkstemp(&template)
        precondition(fd >= 0)
        // SAFETY: writes the local array.
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        return String(cString: template)
    }

    /// A fixture with a large non-loaded tail (like a vmlinux's symbols).
    static func fixtureWithSymbols() -> [UInt8] {
        ElfFixture().bytes() + [UInt8](repeating: 0x5A, count: 256 * 1024)
    }

    @Test("only the headers, notes and PT_LOAD bytes of a vmlinux are read")
    func readsOnlySegments() throws {
        let file = Self.fixtureWithSymbols()
        let source = RecordingSource(file)
        let memory = try TestMemory.make(64 * .mib)
        let setup = try loadLinux(BootConfig(kernel: source), into: memory)
        #expect(setup.format == .elf64)
        #expect(source.bytesRead < 8 * 1024, "read \(source.bytesRead) of \(file.count) bytes")
        #expect(!source.reads.contains { $0.upperBound > UInt64(ElfFixture().bytes().count) }, "nothing of the tail")
        #expect(try memory.read(count: 4096, at: GuestAddress(0x100_0000)).allSatisfy { $0 == 0xCC })
    }

    @Test("a kernel loaded from its file puts the same bytes in guest RAM as from memory")
    func fileMatchesArray() throws {
        var fixture = ElfFixture()
        fixture.segments[0].data = (0..<8192).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        fixture.segments[0].memorySize = 0x4000
        fixture.pvhEntry = 0x100_0010
        let bytes = fixture.bytes() + [UInt8](repeating: 1, count: 4096)
        let path = Self.temporaryFile(bytes)
        defer { unlink(path) }
        let initrdPath = Self.temporaryFile([UInt8](repeating: 0x42, count: 10_000))
        defer { unlink(initrdPath) }
        let viaFile = try TestMemory.make(64 * .mib), viaArray = try TestMemory.make(64 * .mib)
        let a = try loadLinux(BootConfig(kernel: try KernelFile(path: path, role: "kernel"),
                                         initrd: try KernelFile(path: initrdPath, role: "initrd")), into: viaFile)
        let b = try loadLinux(BootConfig(kernel: bytes, initrd: [UInt8](repeating: 0x42, count: 10_000)), into: viaArray)
        #expect(a.format == .elfPVH && b.format == .elfPVH)
        #expect(try viaFile.read(count: 0x4000, at: GuestAddress(0x100_0000)) == viaArray.read(count: 0x4000, at: GuestAddress(0x100_0000)))
        let (address, size) = try #require(a.initrd)
        #expect(size == 10_000)
        #expect(try viaFile.read(count: 10_000, at: address).allSatisfy { $0 == 0x42 })
    }

    @Test("a PT_LOAD segment beyond the end of the file is refused before anything is read from it")
    func segmentBeyondEnd() throws {
        var fixture = ElfFixture()
        fixture.badOffset = (0, 0x10_0000)
        let source = RecordingSource(fixture.bytes())
        let memory = try TestMemory.make(64 * .mib)
        let error = #expect(throws: BootError.self) { try loadLinux(BootConfig(kernel: source), into: memory) }
        #expect(error?.description.contains("program header 1: file bytes 0x100000+0x1000 extend past the end of the file") == true,
                "\(String(describing: error))")
        #expect(!source.reads.contains { $0.lowerBound >= 0x10_0000 })
    }

    @Test("overlapping PT_LOAD segments in a file are refused")
    func overlappingSegmentsInAFile() throws {
        var fixture = ElfFixture()
        fixture.segments.append(.init(physical: 0x100_1000, virtual: 0, data: [1, 2, 3], memorySize: 0x1000))
        let path = Self.temporaryFile(fixture.bytes())
        defer { unlink(path) }
        let memory = try TestMemory.make(64 * .mib)
        let error = #expect(throws: BootError.self) {
            try loadLinux(BootConfig(kernel: try KernelFile(path: path, role: "kernel")), into: memory)
        }
        #expect(error?.description.contains("overlap") == true)
    }

    @Test("a segment outside guest RAM is refused without reading it")
    func segmentOutsideRAM() throws {
        var fixture = ElfFixture()
        fixture.segments[0].physical = 0x8000_0000
        fixture.entry = 0x8000_0000
        let source = RecordingSource(fixture.bytes())
        let memory = try TestMemory.make(64 * .mib)
        let error = #expect(throws: BootError.self) { try loadLinux(BootConfig(kernel: source), into: memory) }
        #expect(error?.description.contains("lies outside guest RAM") == true)
        #expect(source.bytesRead < 1024)
    }

    @Test("a file that shrinks after it was opened is named, not loaded short")
    func fileShrinks() throws {
        let bytes = Self.fixtureWithSymbols()
        let path = Self.temporaryFile(bytes)
        defer { unlink(path) }
        let kernel = try KernelFile(path: path, role: "kernel")
        #expect(truncate(path, 200) == 0)
        let memory = try TestMemory.make(64 * .mib)
        let error = #expect(throws: BootError.self) { try loadLinux(BootConfig(kernel: kernel), into: memory) }
        #expect(error?.description.contains("did it shrink while being read?") == true, "\(String(describing: error))")
    }

    @Test("a huge PT_NOTE is refused, not read")
    func hugeNote() throws {
        var file = ElfFixture().bytes()
        // The PT_NOTE program header is the first one, at 64: p_filesz at +32.
        file.writeLE(UInt64(2 << 20), at: 64 + 32)
        file += [UInt8](repeating: 0, count: 2 << 20)
        let error = #expect(throws: BootError.self) { try ElfKernel.parse(source: RecordingSource(file)) }
        #expect(error?.description.contains("PT_NOTE 0") == true, "\(String(describing: error))")
    }

    @Test("a missing, empty or non-regular kernel file is named with its role")
    func badFiles() throws {
        #expect(throws: FileLoader.Error(role: "kernel", path: "/nonexistent/vmlinux", reason: "no such file")) {
            _ = try KernelFile(path: "/nonexistent/vmlinux", role: "kernel")
        }
        let empty = Self.temporaryFile([])
        defer { unlink(empty) }
        #expect(throws: FileLoader.Error(role: "initrd", path: empty, reason: "file is empty")) {
            _ = try KernelFile(path: empty, role: "initrd")
        }
        #expect(throws: FileLoader.Error(role: "kernel", path: "/tmp", reason: "not a regular file")) {
            _ = try KernelFile(path: "/tmp", role: "kernel")
        }
    }
}
