import Memory

/// One PT_LOAD segment of a vmlinux.
public struct ElfSegment: Equatable, Sendable {
    public var fileOffset: UInt64
    public var fileSize: UInt64
    public var virtualAddress: UInt64
    public var physicalAddress: UInt64
    public var memorySize: UInt64

    public var physicalEnd: UInt64 { physicalAddress + memorySize }
}

/// An uncompressed ELF64 x86-64 Linux kernel (vmlinux), validated against its file.
public struct ElfKernel: Equatable, Sendable {
    /// x86 COMMAND_LINE_SIZE (2048) minus the NUL: vmlinux has no setup header to say.
    public static let defaultCommandLineSize: UInt32 = 2047
    /// A vmlinux has no initrd_addr_max either; the boot protocol's default.
    public static let defaultInitrdAddrMax: UInt64 = 0x7fff_ffff
    static let xenElfNotePhys32Entry: UInt32 = 18

    /// e_entry as written in the file (physical for x86 vmlinux, whose ENTRY is phys_startup_64).
    public var entry: UInt64
    public var segments: [ElfSegment]
    /// The 32-bit PVH entry from the "Xen" XEN_ELFNOTE_PHYS32_ENTRY note, if present.
    public var pvhEntry: UInt64?

    private enum Layout {
        static let headerSize = 64
        static let phdrSize = 56
        static let classELF64: UInt8 = 2
        static let dataLSB: UInt8 = 1
        static let typeExec: UInt16 = 2
        static let machineX86_64: UInt16 = 62
        static let ptLoad: UInt32 = 1
        static let ptNote: UInt32 = 4
    }

    /// Largest PT_NOTE segment read (the PVH note is a few bytes; a real vmlinux has < 1 KiB).
    static let maxNoteSegment: UInt64 = 1 << 20
    /// Largest program header table read (65535 × 56 bytes is the format's own limit).
    static let maxProgramHeaders = 4096

    public static func parse(_ file: [UInt8]) throws(BootError) -> ElfKernel {
        try parse(source: file)
    }

    /// Parses the ELF header, the program headers and the notes, reading only those bytes of
    /// `source`; every offset and size is checked against the file's size before it is read.
    public static func parse(source file: some KernelSource) throws(BootError) -> ElfKernel {
        guard file.size >= UInt64(Layout.headerSize) else {
            throw .elf("file is \(file.size) bytes, shorter than the 64-byte ELF header")
        }
        let header = try file.bytes(at: 0, count: Layout.headerSize, what: "ELF kernel: header")
        guard header[0..<4] == [0x7F, 0x45, 0x4C, 0x46] else { throw .elf("ELF magic missing") }
        guard header[4] == Layout.classELF64 else {
            throw .elf("e_ident class \(header[4]) is not ELFCLASS64 (2); kvmrun loads 64-bit vmlinux only")
        }
        guard header[5] == Layout.dataLSB else { throw .elf("e_ident data \(header[5]) is not little-endian (1)") }
        let type = header.readLE(UInt16.self, at: 16)!
        guard type == Layout.typeExec else { throw .elf("e_type \(type) is not ET_EXEC (2)") }
        let machine = header.readLE(UInt16.self, at: 18)!
        guard machine == Layout.machineX86_64 else { throw .elf("e_machine \(machine) is not EM_X86_64 (62)") }
        let entry = header.readLE(UInt64.self, at: 24)!
        let phoff = header.readLE(UInt64.self, at: 32)!
        let phentsize = Int(header.readLE(UInt16.self, at: 54)!)
        let phnum = Int(header.readLE(UInt16.self, at: 56)!)
        guard phentsize == Layout.phdrSize else {
            throw .elf("e_phentsize \(phentsize) is not \(Layout.phdrSize)")
        }
        guard phnum > 0 else { throw .elf("no program headers (e_phnum 0)") }
        guard phnum <= maxProgramHeaders else { throw .elf("e_phnum \(phnum) is above the \(maxProgramHeaders) kvmrun reads") }
        let tableSize = UInt64(phnum * phentsize)
        guard phoff <= file.size, tableSize <= file.size - phoff else {
            throw .elf("program headers (\(phnum) × \(phentsize) bytes at offset \(hexString(phoff))) extend past the end of the file (\(file.size) bytes)")
        }
        let table = try file.bytes(at: phoff, count: Int(tableSize), what: "ELF kernel: program headers")

        var segments: [ElfSegment] = []
        var pvhEntry: UInt64?
        for index in 0..<phnum {
            let base = index * phentsize
            let pType = table.readLE(UInt32.self, at: base)!
            let segment = ElfSegment(
                fileOffset: table.readLE(UInt64.self, at: base + 8)!,
                fileSize: table.readLE(UInt64.self, at: base + 32)!,
                virtualAddress: table.readLE(UInt64.self, at: base + 16)!,
                physicalAddress: table.readLE(UInt64.self, at: base + 24)!,
                memorySize: table.readLE(UInt64.self, at: base + 40)!)
            guard pType == Layout.ptLoad || pType == Layout.ptNote else { continue }
            guard segment.fileOffset <= file.size,
                  segment.fileSize <= file.size - segment.fileOffset else {
                throw .elf("program header \(index): file bytes \(hexString(segment.fileOffset))+\(hexString(segment.fileSize)) extend past the end of the file (\(file.size) bytes)")
            }
            if pType == Layout.ptNote {
                guard segment.fileSize <= maxNoteSegment else {
                    throw .elf("PT_NOTE \(index): \(hexString(segment.fileSize)) bytes, above the \(hexString(maxNoteSegment)) kvmrun reads")
                }
                let notes = try file.bytes(at: segment.fileOffset, count: Int(segment.fileSize), what: "ELF kernel: PT_NOTE \(index)")
                if let found = try pvhEntryNote(in: notes, index: index, fileOffset: segment.fileOffset) { pvhEntry = found }
                continue
            }
            try validateLoad(segment, index: index)
            if segment.memorySize > 0 { segments.append(segment) }
        }
        guard !segments.isEmpty else { throw .elf("no PT_LOAD segment to load") }
        for (i, a) in segments.enumerated() {
            for b in segments[(i + 1)...] where a.physicalAddress < b.physicalEnd && b.physicalAddress < a.physicalEnd {
                throw .elf("PT_LOAD segments at \(hexString(a.physicalAddress))+\(hexString(a.memorySize)) and \(hexString(b.physicalAddress))+\(hexString(b.memorySize)) overlap")
            }
        }
        let kernel = ElfKernel(entry: entry, segments: segments, pvhEntry: pvhEntry)
        if let pvh = pvhEntry {
            guard pvh < MachineLayout.mmioGapEnd, kernel.segment(containingPhysical: pvh) != nil else {
                throw .elf("PVH entry \(hexString(pvh)) is not inside a PT_LOAD segment below 4 GiB")
            }
        }
        return kernel
    }

    private static func validateLoad(_ segment: ElfSegment, index: Int) throws(BootError) {
        guard segment.fileSize <= segment.memorySize else {
            throw .elf("PT_LOAD \(index): p_filesz \(hexString(segment.fileSize)) exceeds p_memsz \(hexString(segment.memorySize))")
        }
        guard segment.physicalAddress.addingReportingOverflow(segment.memorySize).overflow == false else {
            throw .elf("PT_LOAD \(index): p_paddr \(hexString(segment.physicalAddress)) + p_memsz \(hexString(segment.memorySize)) overflows")
        }
        guard segment.memorySize == 0 || segment.physicalAddress >= MachineLayout.highMemory.raw else {
            throw .elf("PT_LOAD \(index) at p_paddr \(hexString(segment.physicalAddress)) overlaps the boot area below 1 MiB")
        }
    }

    /// Walks the notes of one PT_NOTE segment (its bytes, read from `fileOffset`); returns the
    /// XEN_ELFNOTE_PHYS32_ENTRY value.
    private static func pvhEntryNote(in notes: [UInt8], index: Int, fileOffset: UInt64) throws(BootError) -> UInt64? {
        let end = notes.count
        var offset = 0
        var found: UInt64?
        while end - offset >= 12 {
            let nameSize = Int(notes.readLE(UInt32.self, at: offset)!)
            let descSize = Int(notes.readLE(UInt32.self, at: offset + 4)!)
            let type = notes.readLE(UInt32.self, at: offset + 8)!
            let nameStart = offset + 12
            let descStart = nameStart + (nameSize + 3) & ~3
            let next = descStart + (descSize + 3) & ~3
            guard next <= end else {
                throw .elf("PT_NOTE \(index): note at offset \(hexString(fileOffset + UInt64(offset))) (namesz \(nameSize), descsz \(descSize)) runs past the segment")
            }
            if type == xenElfNotePhys32Entry, notes[nameStart..<(nameStart + nameSize)] == [0x58, 0x65, 0x6E, 0x00] {
                switch descSize {
                case 4: found = UInt64(notes.readLE(UInt32.self, at: descStart)!)
                case 8: found = notes.readLE(UInt64.self, at: descStart)!
                default: throw .elf("PT_NOTE \(index): Xen PHYS32_ENTRY note has a \(descSize)-byte value (expected 4 or 8)")
                }
            }
            offset = next
        }
        return found
    }

    func segment(containingPhysical address: UInt64) -> ElfSegment? {
        segments.first { address >= $0.physicalAddress && address < $0.physicalEnd }
    }

    /// The physical address of the 64-bit entry. x86 vmlinux links ENTRY(phys_startup_64), so
    /// e_entry is already physical (Firecracker and Cloud Hypervisor use it as is); a virtual
    /// e_entry is translated through the PT_LOAD segment whose virtual range contains it.
    public func physicalEntry() throws(BootError) -> UInt64 {
        if segment(containingPhysical: entry) != nil { return entry }
        if let segment = segments.first(where: { entry >= $0.virtualAddress && entry - $0.virtualAddress < $0.memorySize }) {
            return entry - segment.virtualAddress + segment.physicalAddress
        }
        throw .elf("e_entry \(hexString(entry)) lies in no PT_LOAD segment")
    }

    /// One past the highest byte any segment occupies.
    public var kernelEnd: UInt64 { segments.map(\.physicalEnd).max() ?? 0 }

    /// Reads each segment's file bytes from `source` straight to p_paddr and zeroes the rest up
    /// to p_memsz, after checking that every segment lies inside guest RAM. Only the PT_LOAD
    /// bytes are read: of a 19 MB vmlinux, about 12 MB.
    func load(from source: some KernelSource, into memory: GuestMemory) throws(BootError) {
        for (index, segment) in segments.enumerated() {
            let address = GuestAddress(segment.physicalAddress)
            guard memory.isValid(address, length: segment.memorySize) else {
                throw .elf("PT_LOAD \(index) (\(address)+\(hexString(segment.memorySize))) lies outside guest RAM")
            }
            try source.load(offset: segment.fileOffset, length: segment.fileSize, into: memory, at: address,
                            step: "ELF kernel: loading PT_LOAD \(index)")
            try memory.bootZero(at: address + segment.fileSize, length: segment.memorySize - segment.fileSize,
                                step: "ELF kernel: zeroing PT_LOAD \(index) bss")
        }
    }
}
