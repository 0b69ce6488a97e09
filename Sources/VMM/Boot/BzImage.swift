import Memory

/// The fields of a bzImage's setup header that kvmrun uses, after validation.
public struct SetupHeader: Equatable, Sendable {
    /// Number of 512-byte setup sectors (0 in the file means 4).
    public var setupSectors: Int
    /// Size of the protected-mode code in 16-byte paragraphs.
    public var sysSize: UInt32
    /// Boot protocol version, e.g. 0x020F for 2.15.
    public var version: UInt16
    public var loadFlags: UInt8
    public var kernelAlignment: UInt32
    public var relocatable: Bool
    /// Highest address the initrd's last byte may occupy.
    public var initrdAddrMax: UInt32
    /// Longest command line the kernel takes, without the terminating NUL.
    public var cmdlineSize: UInt32
    public var xloadFlags: UInt16
    /// Where a non-relocated kernel runs (LOAD_PHYSICAL_ADDR).
    public var prefAddress: UInt64
    /// Memory the kernel needs from its runtime address on, while decompressing.
    public var initSize: UInt32
    /// The raw header from 0x1F1 to 0x202 + byte at 0x201, copied into the zero page.
    public var rawBytes: [UInt8]

    public var canBeLoadedAbove4G: Bool { xloadFlags & SetupHeaderValue.xlfCanBeLoadedAbove4G != 0 }
}

/// A Linux bzImage: real-mode setup sectors followed by the compressed protected-mode kernel.
public struct BzImage: Equatable, Sendable {
    /// Oldest boot protocol with XLF_KERNEL_64 in xloadflags (and init_size, pref_address).
    public static let minimumVersion: UInt16 = 0x020C

    public var header: SetupHeader
    /// File offset of the protected-mode kernel: (setup_sects + 1) * 512.
    public var kernelOffset: Int
    /// Bytes of protected-mode kernel in the file (everything after the setup sectors).
    public var kernelSize: Int

    /// Validates the setup header in `file`.
    public static func parse(_ file: [UInt8]) throws(BootError) -> BzImage {
        typealias O = BootParamsOffset
        guard file.count >= O.headerMagic + 4,
              Array(file[O.headerMagic..<(O.headerMagic + 4)]) == SetupHeaderValue.magic else {
            throw .bzImage("setup header magic missing (not a Linux kernel?)")
        }
        // The boot sector and at least one setup sector: every header field lies inside.
        guard file.count >= 1024 else {
            throw .bzImage("file is \(file.count) bytes, too short to hold the boot sector and setup sectors (1024)")
        }
        let bootFlag = file.readLE(UInt16.self, at: O.bootFlag)!
        guard bootFlag == SetupHeaderValue.bootFlag else {
            throw .bzImage("boot_flag at 0x1FE is \(hexString(bootFlag)), expected 0xaa55")
        }
        let version = file.readLE(UInt16.self, at: O.version)!
        guard version >= minimumVersion else {
            throw .bzImage("boot protocol \(versionString(version)) is too old; kvmrun needs 2.12 or later (64-bit entry point)")
        }
        let headerEnd = min(O.jump + 2 + Int(file[O.jump + 1]), O.setupHeaderLimit)
        guard headerEnd >= O.initSize + 4 else {
            throw .bzImage("setup header ends at \(hexString(headerEnd)) (0x202 + byte at 0x201), too short for protocol 2.12 fields")
        }
        let loadFlags = file[O.loadFlags]
        guard loadFlags & SetupHeaderValue.loadedHigh != 0 else {
            throw .bzImage("loadflags lacks LOADED_HIGH (a zImage loaded at 0x10000 is not supported)")
        }
        let xloadFlags = file.readLE(UInt16.self, at: O.xloadFlags)!
        guard xloadFlags & SetupHeaderValue.xlfKernel64 != 0 else {
            throw .bzImage("xloadflags lacks XLF_KERNEL_64: the kernel has no 64-bit entry point (32-bit kernel?)")
        }
        let rawSects = Int(file[O.setupSects])
        let setupSectors = rawSects == 0 ? 4 : rawSects
        let sysSize = file.readLE(UInt32.self, at: O.sysSize)!
        let kernelOffset = (setupSectors + 1) * 512
        let expected = UInt64(kernelOffset) + UInt64(sysSize) * 16
        guard UInt64(file.count) >= expected, file.count > kernelOffset else {
            throw .bzImage("file is truncated: \(file.count) bytes, but the setup header promises \(expected) "
                + "((setup_sects \(setupSectors) + 1) * 512 + syssize \(sysSize) * 16)")
        }
        let header = SetupHeader(
            setupSectors: setupSectors, sysSize: sysSize, version: version, loadFlags: loadFlags,
            kernelAlignment: file.readLE(UInt32.self, at: O.kernelAlignment)!,
            relocatable: file[O.relocatableKernel] != 0,
            initrdAddrMax: file.readLE(UInt32.self, at: O.initrdAddrMax)!,
            cmdlineSize: file.readLE(UInt32.self, at: O.cmdlineSize)!,
            xloadFlags: xloadFlags,
            prefAddress: file.readLE(UInt64.self, at: O.prefAddress)!,
            initSize: file.readLE(UInt32.self, at: O.initSize)!,
            rawBytes: Array(file[O.setupHeader..<headerEnd]))
        if header.relocatable {
            let alignment = header.kernelAlignment
            guard alignment != 0, alignment & (alignment - 1) == 0 else {
                throw .bzImage("kernel_alignment \(hexString(alignment)) is not a power of two")
            }
        }
        guard header.initSize != 0 else { throw .bzImage("init_size is 0") }
        // The kernel's runtime buffer ends at pref_address + init_size at the latest.
        guard header.prefAddress.addingReportingOverflow(UInt64(header.initSize)).overflow == false else {
            throw .bzImage("pref_address \(hexString(header.prefAddress)) + init_size \(hexString(header.initSize)) overflows")
        }
        return BzImage(header: header, kernelOffset: kernelOffset, kernelSize: file.count - kernelOffset)
    }

    /// Where the kernel decompresses itself when loaded at `loadAddress`: a relocatable
    /// kernel at its load address rounded up to kernel_alignment but not below pref_address
    /// (LOAD_PHYSICAL_ADDR), a fixed one at pref_address (arch/x86/boot/compressed/head_64.S).
    public func runtimeAddress(loadAddress: UInt64) -> UInt64 {
        guard header.relocatable,
              let aligned = loadAddress.alignedUp(to: UInt64(header.kernelAlignment)) else {
            return header.prefAddress
        }
        return max(aligned, header.prefAddress)
    }

    /// One past the last byte the kernel uses while booting from `loadAddress`: the loaded
    /// image itself or the runtime buffer of init_size bytes, whichever ends later. Saturates at
    /// UInt64.max (which no guest RAM reaches) rather than overflow.
    public func kernelEnd(loadAddress: UInt64) -> UInt64 {
        func sum(_ a: UInt64, _ b: UInt64) -> UInt64 {
            let (total, overflow) = a.addingReportingOverflow(b)
            return overflow ? .max : total
        }
        return max(sum(loadAddress, UInt64(kernelSize)), sum(runtimeAddress(loadAddress: loadAddress), UInt64(header.initSize)))
    }

    /// Copies the protected-mode kernel to 1 MiB after checking that it and its init_size
    /// runtime buffer fit in low RAM (which ends at `lowRAMEnd`). Returns the kernel's end.
    func load(from file: [UInt8], into memory: GuestMemory, lowRAMEnd: UInt64) throws(BootError) -> GuestAddress {
        let load = MachineLayout.bzImageLoad.raw
        let end = kernelEnd(loadAddress: load)
        guard end <= lowRAMEnd else {
            throw .bzImage("kernel needs guest RAM up to \(hexString(end)) (\(describeSize(UInt64(kernelSize))) image at "
                + "\(hexString(load)), init_size \(describeSize(UInt64(header.initSize))) at "
                + "\(hexString(runtimeAddress(loadAddress: load)))), but low RAM ends at \(hexString(lowRAMEnd))")
        }
        try memory.bootWrite(file[kernelOffset...], at: MachineLayout.bzImageLoad, step: "bzImage: loading the kernel")
        return GuestAddress(end)
    }

    static func versionString(_ version: UInt16) -> String {
        let minor = version & 0xFF
        return "\(version >> 8)." + (minor < 10 ? "0\(minor)" : "\(minor)")
    }
}
