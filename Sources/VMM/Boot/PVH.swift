import Memory

/// The Xen/PVH start-of-day structures (xen/include/public/arch-x86/hvm/start_info.h),
/// passed in EBX to a kernel entered at its XEN_ELFNOTE_PHYS32_ENTRY.
///
///     hvm_start_info (56 bytes)          hvm_modlist_entry (32)     hvm_memmap_table_entry (24)
///      0 magic u32     4 version u32      0 paddr u64                0 addr u64
///      8 flags u32    12 nr_modules u32   8 size u64                 8 size u64
///     16 modlist_paddr u64               16 cmdline_paddr u64       16 type u32
///     24 cmdline_paddr u64               24 reserved u64            20 reserved u32
///     32 rsdp_paddr u64
///     40 memmap_paddr u64 (version 1)
///     48 memmap_entries u32  52 reserved u32
public enum PVHStartInfo {
    public static let magic: UInt32 = 0x336E_C578
    public static let version: UInt32 = 1
    public static let size = 56
    public static let modlistEntrySize = 32
    public static let memmapEntrySize = 24

    enum Offset {
        static let magic = 0, version = 4, flags = 8, nrModules = 12, modlistPaddr = 16
        static let cmdlinePaddr = 24, rsdpPaddr = 32, memmapPaddr = 40, memmapEntries = 48
    }

    /// The start-info structure itself. `modules` is the initrd, if any, described by a
    /// module list at `modlist`; the memory map is at `memmap` with `memmapEntries` entries.
    public static func startInfo(commandLine: GuestAddress, modlist: GuestAddress, moduleCount: Int,
                                 memmap: GuestAddress, memmapEntries: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: size)
        bytes.writeLE(magic, at: Offset.magic)
        bytes.writeLE(version, at: Offset.version)
        bytes.writeLE(UInt32(moduleCount), at: Offset.nrModules)
        bytes.writeLE(moduleCount > 0 ? modlist.raw : 0, at: Offset.modlistPaddr)
        bytes.writeLE(commandLine.raw, at: Offset.cmdlinePaddr)
        bytes.writeLE(memmap.raw, at: Offset.memmapPaddr)
        bytes.writeLE(UInt32(memmapEntries), at: Offset.memmapEntries)
        return bytes
    }

    /// A module list entry (the initrd); no per-module command line.
    public static func modlistEntry(address: GuestAddress, size: UInt64) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: modlistEntrySize)
        bytes.writeLE(address.raw, at: 0)
        bytes.writeLE(size, at: 8)
        return bytes
    }

    /// The memory map, e820 entries in hvm_memmap_table_entry form.
    public static func memmap(_ entries: [E820Entry]) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: entries.count * memmapEntrySize)
        for (index, entry) in entries.enumerated() {
            let offset = index * memmapEntrySize
            bytes.writeLE(entry.address, at: offset)
            bytes.writeLE(entry.size, at: offset + 8)
            bytes.writeLE(entry.type.rawValue, at: offset + 16)
        }
        return bytes
    }

    /// Writes start info, memory map and module list at their `MachineLayout` addresses.
    static func write(into memory: GuestMemory, commandLine: GuestAddress, e820: [E820Entry],
                      initrd: (GuestAddress, UInt64)?) throws(BootError) {
        guard e820.count <= E820.maxEntries else {
            throw .badMemoryLayout("\(e820.count) memory map entries exceed the PVH area's \(E820.maxEntries)")
        }
        let info = startInfo(commandLine: commandLine, modlist: MachineLayout.pvhModlist,
                             moduleCount: initrd == nil ? 0 : 1,
                             memmap: MachineLayout.pvhMemmap, memmapEntries: e820.count)
        try memory.bootWrite(info, at: MachineLayout.pvhStartInfo, step: "PVH: writing hvm_start_info")
        try memory.bootWrite(memmap(e820), at: MachineLayout.pvhMemmap, step: "PVH: writing the memory map")
        if let (address, size) = initrd {
            try memory.bootWrite(modlistEntry(address: address, size: size), at: MachineLayout.pvhModlist,
                                 step: "PVH: writing the module list")
        }
    }
}
