import Memory

/// How the kernel is entered.
public enum KernelFormat: Equatable, Sendable {
    /// bzImage at 1 MiB, 64-bit entry at 1 MiB + 0x200, zero page in RSI.
    case bzImage
    /// ELF vmlinux at its physical addresses, 64-bit entry at e_entry, zero page in RSI.
    case elf64
    /// ELF vmlinux entered at its PVH note in 32-bit protected mode, start info in EBX.
    case elfPVH
}

/// A kernel file, told apart by its first bytes and validated.
public enum KernelImage: Equatable, Sendable {
    case bzImage(BzImage)
    case elf(ElfKernel)

    /// ELF magic → ELF; "HdrS" at 0x202 → bzImage; anything else is not a Linux kernel.
    public static func detect(_ file: [UInt8]) throws(BootError) -> KernelImage {
        try detect(source: file).image
    }

    /// Reads the first bytes of `source` to tell the format, then what that format needs: an
    /// ELF's headers only, a bzImage whole. Returns the whole file too for a bzImage.
    static func detect(source: some KernelSource) throws(BootError) -> (image: KernelImage, bzImageBytes: [UInt8]?) {
        let magic = BootParamsOffset.headerMagic
        let prefix = try source.bytes(at: 0, count: Int(min(source.size, UInt64(magic + 4))), what: "kernel: first bytes")
        if prefix.count >= 4, prefix[0..<4] == [0x7F, 0x45, 0x4C, 0x46] {
            return (.elf(try ElfKernel.parse(source: source)), nil)
        }
        if prefix.count >= magic + 4, Array(prefix[magic..<(magic + 4)]) == SetupHeaderValue.magic {
            let file = try source.allBytes(what: "bzImage")
            return (.bzImage(try BzImage.parse(file)), file)
        }
        throw .notALinuxKernel
    }
}

/// What the VMM asks the loader to boot.
public struct BootConfig {
    /// The kernel file (or bytes); an ELF's PT_LOAD segments are read from it into guest RAM.
    public var kernel: any KernelSource
    /// The initrd, read straight into guest RAM.
    public var initrd: (any KernelSource)?
    public var commandLine: String
    public var cpus: Int

    public init(kernel: any KernelSource, initrd: (any KernelSource)? = nil, commandLine: String = "", cpus: Int = 1) {
        self.kernel = kernel
        self.initrd = initrd
        self.commandLine = commandLine
        self.cpus = cpus
    }
}

/// What the loader did: the boot vCPU's state and where things went.
public struct BootSetup {
    public var cpu: BootCPUState
    public var format: KernelFormat
    /// One past the last byte the kernel uses while booting (for bzImage: including init_size).
    public var kernelEnd: GuestAddress
    /// Address and size of the initrd, if one was given (an empty initrd counts as none).
    public var initrd: (GuestAddress, UInt64)?
}

/// Loads a Linux kernel (bzImage or ELF vmlinux), initrd and command line into `memory`,
/// writes the boot structures (zero page or PVH start info, e820, MP table, page tables,
/// GDT/IDT) and returns the boot vCPU's state. Secondary vCPUs need nothing: they start
/// through INIT/SIPI from the in-kernel LAPIC.
public func loadLinux(_ config: BootConfig, into memory: GuestMemory) throws(BootError) -> BootSetup {
    let lowRAMEnd = try MachineLayout.lowRAMEnd(of: memory)
    let (image, bzImageBytes) = try KernelImage.detect(source: config.kernel)
    guard (1...MPTable.maxCPUs).contains(config.cpus) else {
        throw .mpTable("\(config.cpus) vCPUs is outside 1...\(MPTable.maxCPUs)")
    }

    let format: KernelFormat
    let entry: GuestAddress
    let kernelEnd: GuestAddress
    let cmdlineLimit: UInt32
    let initrdAddressMax: UInt64
    var zeroPage: ZeroPage?
    switch image {
    case .bzImage(let bzImage):
        cmdlineLimit = bzImage.header.cmdlineSize
        initrdAddressMax = bzImage.header.initrdAddrMax == 0 ? 0x37FF_FFFF : UInt64(bzImage.header.initrdAddrMax)
        kernelEnd = try bzImage.load(from: bzImageBytes ?? [], into: memory, lowRAMEnd: lowRAMEnd)
        entry = MachineLayout.bzImageLoad + MachineLayout.bzImage64BitEntryOffset
        format = .bzImage
        zeroPage = ZeroPage(setupHeader: bzImage.header.rawBytes)
    case .elf(let elf):
        cmdlineLimit = ElfKernel.defaultCommandLineSize
        initrdAddressMax = ElfKernel.defaultInitrdAddrMax
        try elf.load(from: config.kernel, into: memory)
        kernelEnd = GuestAddress(elf.kernelEnd)
        if let pvh = elf.pvhEntry {
            entry = GuestAddress(pvh)
            format = .elfPVH
        } else {
            entry = GuestAddress(try elf.physicalEntry())
            format = .elf64
            zeroPage = ZeroPage.synthesized()
        }
    }

    let commandLine = try BootCommandLine.encode(config.commandLine, kernelLimit: cmdlineLimit)
    try memory.bootWrite(commandLine, at: MachineLayout.commandLine, step: "kernel command line: writing")

    var initrd: (GuestAddress, UInt64)?
    if let source = config.initrd, source.size > 0 {
        let size = source.size
        let address = try InitrdPlacement.address(size: size, addressMax: initrdAddressMax,
                                                  kernelEnd: kernelEnd.raw, lowRAMEnd: lowRAMEnd)
        try source.load(offset: 0, length: size, into: memory, at: address,
                        step: "initrd: loading \(describeSize(size)) at \(address)")
        initrd = (address, size)
    }

    let e820 = E820.map(ramLayout: memory.bootRegions.map { (base: $0.guestBase, size: $0.size) })
    let cpu: BootCPUState
    if var page = zeroPage {
        page.setCommandLine(at: MachineLayout.commandLine)
        if let (address, size) = initrd { page.setRamdisk(at: address, size: size) }
        try page.setE820(e820)
        try memory.bootWrite(page.bytes, at: MachineLayout.zeroPage, step: "zero page: writing boot_params")
        try PageTables.write(into: memory)
        try GDT.write(GDT.longMode, into: memory)
        cpu = .longMode(entry: entry, zeroPage: MachineLayout.zeroPage)
    } else {
        try PVHStartInfo.write(into: memory, commandLine: MachineLayout.commandLine, e820: e820, initrd: initrd)
        try GDT.write(GDT.protectedMode, into: memory)
        cpu = .pvh(entry: entry, startInfo: MachineLayout.pvhStartInfo)
    }
    try MPTable.write(cpus: config.cpus, into: memory)
    return BootSetup(cpu: cpu, format: format, kernelEnd: kernelEnd, initrd: initrd)
}
