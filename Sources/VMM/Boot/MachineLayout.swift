import Memory

/// Where kvmrun puts things in guest-physical memory on x86-64, and how RAM is split
/// around the 32-bit MMIO gap. Everything below 1 MiB except the EBDA is scratch space for
/// boot structures; the kernel itself goes at 1 MiB (bzImage) or at its ELF addresses.
public enum MachineLayout {
    /// Global descriptor table (4 entries).
    public static let gdt = GuestAddress(0x500)
    /// Interrupt descriptor table (one empty 8-byte entry; the kernel installs its own).
    public static let idt = GuestAddress(0x520)
    /// PVH `hvm_start_info` (56 bytes), followed by its memory map and module list.
    public static let pvhStartInfo = GuestAddress(0x6000)
    public static let pvhMemmap = GuestAddress(0x6038)
    /// Room for `E820.maxEntries` memmap entries of 24 bytes before the module list.
    public static let pvhModlist = GuestAddress(0x6038 + 128 * 24)
    /// Linux `boot_params`, 4 KiB.
    public static let zeroPage = GuestAddress(0x7000)
    /// Initial stack pointer (the stack grows down into the rest of 0x8000..<0x9000).
    public static let bootStackTop = GuestAddress(0x8ff0)
    /// Identity-map page tables: PML4, one PDPT, four page directories.
    public static let pml4 = GuestAddress(0x9000)
    public static let pdpt = GuestAddress(0xa000)
    public static let pageDirectories = GuestAddress(0xb000)
    /// Kernel command line, NUL-terminated.
    public static let commandLine = GuestAddress(0x20000)
    /// Bytes reserved for the command line, including its NUL.
    public static let commandLineAreaSize: UInt64 = 64 * .kib
    /// Extended BIOS data area: start of the reserved range up to 1 MiB, holds the MP table.
    public static let ebda = GuestAddress(0x9fc00)
    public static let mpTable = ebda
    /// First byte above the legacy BIOS area.
    public static let highMemory = GuestAddress(0x10_0000)
    /// Where the protected-mode part of a bzImage is loaded.
    public static let bzImageLoad = highMemory
    /// The 64-bit entry point of a bzImage, relative to its load address.
    public static let bzImage64BitEntryOffset: UInt64 = 0x200

    /// The hole for device MMIO (IOAPIC, LAPIC, virtio-mmio) below 4 GiB: no RAM here.
    public static let mmioGapStart: UInt64 = 0xC000_0000
    public static let mmioGapEnd: UInt64 = 0x1_0000_0000
    /// The boot page tables identity-map this much.
    public static let identityMappedSize: UInt64 = 4 * .gib

    /// Smallest guest RAM kvmrun boots (a compressed kernel decompresses at 16 MiB).
    public static let minimumMemory: UInt64 = 32 * .mib

    /// Splits `memorySize` bytes of RAM around the MMIO gap: [0, min(N, 3 GiB)) and, for
    /// the rest, a region from 4 GiB. Rejects sizes below `minimumMemory` or not a multiple
    /// of 4 KiB.
    public static func ramLayout(memorySize: UInt64) throws(BootError) -> [(base: GuestAddress, size: UInt64)] {
        guard memorySize >= minimumMemory else {
            throw .memoryTooSmall(size: memorySize, minimum: minimumMemory)
        }
        guard memorySize % 4096 == 0 else {
            throw .badMemoryLayout("guest RAM size \(memorySize) bytes is not a multiple of 4 KiB")
        }
        let low = min(memorySize, mmioGapStart)
        var layout: [(base: GuestAddress, size: UInt64)] = [(GuestAddress(0), low)]
        if memorySize > low {
            let high = memorySize - low
            guard mmioGapEnd.addingReportingOverflow(high).overflow == false else {
                throw .badMemoryLayout("guest RAM size \(memorySize) bytes overflows the address space")
            }
            layout.append((GuestAddress(mmioGapEnd), high))
        }
        return layout
    }

    /// End of the RAM region that starts at guest address 0.
    static func lowRAMEnd(of memory: GuestMemory) throws(BootError) -> UInt64 {
        guard let low = memory.regions.first(where: { $0.guestBase.raw == 0 }) else {
            throw .badMemoryLayout("no RAM region starts at guest address 0")
        }
        guard low.size >= minimumMemory else {
            throw .memoryTooSmall(size: low.size, minimum: minimumMemory)
        }
        return low.guestEnd
    }
}
