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

    public static func parse(_ file: [UInt8]) throws(BootError) -> ElfKernel {
        guard file.count >= Layout.headerSize else {
            throw .elf("file is \(file.count) bytes, shorter than the 64-byte ELF header")
        }
        guard file[0..<4] == [0x7F, 0x45, 0x4C, 0x46] else { throw .elf("ELF magic missing") }
        guard file[4] == Layout.classELF64 else {
            throw .elf("e_ident class \(file[4]) is not ELFCLASS64 (2); kvmrun loads 64-bit vmlinux only")
        }
        guard file[5] == Layout.dataLSB else { throw .elf("e_ident data \(file[5]) is not little-endian (1)") }
        let type = file.readLE(UInt16.self, at: 16)!
        guard type == Layout.typeExec else { throw .elf("e_type \(type) is not ET_EXEC (2)") }
        let machine = file.readLE(UInt16.self, at: 18)!
        guard machine == Layout.machineX86_64 else { throw .elf("e_machine \(machine) is not EM_X86_64 (62)") }
        let entry = file.readLE(UInt64.self, at: 24)!
        let phoff = file.readLE(UInt64.self, at: 32)!
        let phentsize = Int(file.readLE(UInt16.self, at: 54)!)
        let phnum = Int(file.readLE(UInt16.self, at: 56)!)
        guard phentsize == Layout.phdrSize else {
            throw .elf("e_phentsize \(phentsize) is not \(Layout.phdrSize)")
        }
        guard phnum > 0 else { throw .elf("no program headers (e_phnum 0)") }
        let tableSize = UInt64(phnum * phentsize)
        guard phoff <= UInt64(file.count), tableSize <= UInt64(file.count) - phoff else {
            throw .elf("program headers (\(phnum) × \(phentsize) bytes at offset \(hexString(phoff))) extend past the end of the file (\(file.count) bytes)")
        }

        var segments: [ElfSegment] = []
        var pvhEntry: UInt64?
        for index in 0..<phnum {
            let base = Int(phoff) + index * phentsize
            let pType = file.readLE(UInt32.self, at: base)!
            let segment = ElfSegment(
                fileOffset: file.readLE(UInt64.self, at: base + 8)!,
                fileSize: file.readLE(UInt64.self, at: base + 32)!,
                virtualAddress: file.readLE(UInt64.self, at: base + 16)!,
                physicalAddress: file.readLE(UInt64.self, at: base + 24)!,
                memorySize: file.readLE(UInt64.self, at: base + 40)!)
            guard pType == Layout.ptLoad || pType == Layout.ptNote else { continue }
            guard segment.fileOffset <= UInt64(file.count),
                  segment.fileSize <= UInt64(file.count) - segment.fileOffset else {
                throw .elf("program header \(index): file bytes \(hexString(segment.fileOffset))+\(hexString(segment.fileSize)) extend past the end of the file (\(file.count) bytes)")
            }
            if pType == Layout.ptNote {
                if let found = try pvhEntryNote(in: file, segment: segment, index: index) { pvhEntry = found }
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

    /// Walks the notes of one PT_NOTE segment; returns the XEN_ELFNOTE_PHYS32_ENTRY value.
    private static func pvhEntryNote(in file: [UInt8], segment: ElfSegment, index: Int) throws(BootError) -> UInt64? {
        let start = Int(segment.fileOffset), end = start + Int(segment.fileSize)
        var offset = start
        var found: UInt64?
        while end - offset >= 12 {
            let nameSize = Int(file.readLE(UInt32.self, at: offset)!)
            let descSize = Int(file.readLE(UInt32.self, at: offset + 4)!)
            let type = file.readLE(UInt32.self, at: offset + 8)!
            let nameStart = offset + 12
            let descStart = nameStart + (nameSize + 3) & ~3
            let next = descStart + (descSize + 3) & ~3
            guard next <= end else {
                throw .elf("PT_NOTE \(index): note at offset \(hexString(offset)) (namesz \(nameSize), descsz \(descSize)) runs past the segment")
            }
            if type == xenElfNotePhys32Entry, file[nameStart..<(nameStart + nameSize)] == [0x58, 0x65, 0x6E, 0x00] {
                switch descSize {
                case 4: found = UInt64(file.readLE(UInt32.self, at: descStart)!)
                case 8: found = file.readLE(UInt64.self, at: descStart)!
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

    /// Copies each segment's file bytes to p_paddr and zeroes the rest up to p_memsz, after
    /// checking that every segment lies inside guest RAM.
    func load(from file: [UInt8], into memory: GuestMemory) throws(BootError) {
        for (index, segment) in segments.enumerated() {
            let address = GuestAddress(segment.physicalAddress)
            guard memory.isValid(address, length: segment.memorySize) else {
                throw .elf("PT_LOAD \(index) (\(address)+\(hexString(segment.memorySize))) lies outside guest RAM")
            }
            let start = Int(segment.fileOffset)
            try memory.bootWrite(file[start..<(start + Int(segment.fileSize))], at: address,
                                 step: "ELF kernel: loading PT_LOAD \(index)")
            try memory.bootZero(at: address + segment.fileSize, length: segment.memorySize - segment.fileSize,
                                step: "ELF kernel: zeroing PT_LOAD \(index) bss")
        }
    }
}
