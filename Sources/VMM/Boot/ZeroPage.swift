import Memory

/// Byte offsets inside Linux `struct boot_params` (the "zero page"), from
/// Documentation/arch/x86/boot.rst and zero-page.rst. The setup header sits at the same
/// offsets in the bzImage file and in the zero page.
enum BootParamsOffset {
    static let extRamdiskImage = 0x0C0      // u32, high half of ramdisk_image
    static let extRamdiskSize = 0x0C4       // u32, high half of ramdisk_size
    static let extCmdLinePtr = 0x0C8        // u32, high half of cmd_line_ptr
    static let e820Entries = 0x1E8          // u8
    static let setupHeader = 0x1F1          // first byte of struct setup_header
    static let setupSects = 0x1F1           // u8
    static let sysSize = 0x1F4              // u32, 16-byte paragraphs
    static let bootFlag = 0x1FE             // u16, 0xAA55
    static let jump = 0x200                 // 2 bytes; 0x201 holds the header length - 2
    static let headerMagic = 0x202          // "HdrS"
    static let version = 0x206              // u16
    static let typeOfLoader = 0x210         // u8
    static let loadFlags = 0x211            // u8
    static let ramdiskImage = 0x218         // u32
    static let ramdiskSize = 0x21C          // u32
    static let cmdLinePtr = 0x228           // u32
    static let initrdAddrMax = 0x22C        // u32
    static let kernelAlignment = 0x230      // u32
    static let relocatableKernel = 0x234    // u8
    static let xloadFlags = 0x236           // u16
    static let cmdlineSize = 0x238          // u32
    static let prefAddress = 0x258          // u64
    static let initSize = 0x260             // u32
    static let setupHeaderLimit = 0x290     // edd_mbr_sig_buffer starts here
    static let e820Table = 0x2D0            // 128 entries of 20 bytes
}

/// Constants of the setup header.
enum SetupHeaderValue {
    static let bootFlag: UInt16 = 0xAA55
    static let magic: [UInt8] = Array("HdrS".utf8)
    static let loadedHigh: UInt8 = 0x01             // loadflags bit 0
    static let xlfKernel64: UInt16 = 0x01           // xloadflags bit 0
    static let xlfCanBeLoadedAbove4G: UInt16 = 0x02 // xloadflags bit 1
    /// "Undefined" boot loader ID.
    static let typeOfLoaderUndefined: UInt8 = 0xFF
}

/// The 4 KiB `boot_params` handed to the 64-bit entry point in RSI.
public struct ZeroPage: Equatable, Sendable {
    public static let size = 4096
    public private(set) var bytes: [UInt8]

    /// Starts from the kernel's own setup header (bytes from 0x1F1 on, as read from the
    /// bzImage), as boot.rst asks of a 64-bit boot loader.
    public init(setupHeader: [UInt8]) {
        bytes = [UInt8](repeating: 0, count: Self.size)
        let length = min(setupHeader.count, BootParamsOffset.setupHeaderLimit - BootParamsOffset.setupHeader)
        bytes.writeBytes(setupHeader.prefix(length), at: BootParamsOffset.setupHeader)
        bytes[BootParamsOffset.typeOfLoader] = SetupHeaderValue.typeOfLoaderUndefined
    }

    /// A setup header for an ELF vmlinux entered at its 64-bit entry, which has no header of
    /// its own: the fields the kernel's early code reads.
    public static func synthesized(kernelAlignment: UInt32 = 0x100_0000,
                                   cmdlineSize: UInt32 = ElfKernel.defaultCommandLineSize) -> ZeroPage {
        var page = ZeroPage(setupHeader: [])
        page.bytes.writeLE(SetupHeaderValue.bootFlag, at: BootParamsOffset.bootFlag)
        page.bytes.writeBytes(SetupHeaderValue.magic, at: BootParamsOffset.headerMagic)
        page.bytes.writeLE(UInt16(0x020F), at: BootParamsOffset.version)
        page.bytes[BootParamsOffset.loadFlags] = SetupHeaderValue.loadedHigh
        page.bytes.writeLE(kernelAlignment, at: BootParamsOffset.kernelAlignment)
        page.bytes.writeLE(cmdlineSize, at: BootParamsOffset.cmdlineSize)
        page.bytes.writeLE(UInt32(0x7fff_ffff), at: BootParamsOffset.initrdAddrMax)
        return page
    }

    public mutating func setCommandLine(at address: GuestAddress) {
        bytes.writeLE(UInt32(truncatingIfNeeded: address.raw), at: BootParamsOffset.cmdLinePtr)
        bytes.writeLE(UInt32(truncatingIfNeeded: address.raw >> 32), at: BootParamsOffset.extCmdLinePtr)
    }

    public mutating func setRamdisk(at address: GuestAddress, size: UInt64) {
        bytes.writeLE(UInt32(truncatingIfNeeded: address.raw), at: BootParamsOffset.ramdiskImage)
        bytes.writeLE(UInt32(truncatingIfNeeded: address.raw >> 32), at: BootParamsOffset.extRamdiskImage)
        bytes.writeLE(UInt32(truncatingIfNeeded: size), at: BootParamsOffset.ramdiskSize)
        bytes.writeLE(UInt32(truncatingIfNeeded: size >> 32), at: BootParamsOffset.extRamdiskSize)
    }

    /// Writes the e820 table (at most `E820.maxEntries`).
    public mutating func setE820(_ entries: [E820Entry]) throws(BootError) {
        guard entries.count <= E820.maxEntries else {
            throw .badMemoryLayout("\(entries.count) e820 entries exceed the zero page's \(E820.maxEntries)")
        }
        bytes[BootParamsOffset.e820Entries] = UInt8(entries.count)
        for (index, entry) in entries.enumerated() {
            let offset = BootParamsOffset.e820Table + index * E820.entrySize
            bytes.writeLE(entry.address, at: offset)
            bytes.writeLE(entry.size, at: offset + 8)
            bytes.writeLE(entry.type.rawValue, at: offset + 16)
        }
    }
}
