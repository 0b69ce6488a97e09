import Memory

/// Identity map of the first 4 GiB with 2 MiB pages: PML4[0] → PDPT[0..3] → four page
/// directories of 512 entries each. The 64-bit entry runs on these until the kernel
/// builds its own.
public enum PageTables {
    static let present: UInt64 = 1 << 0
    static let writable: UInt64 = 1 << 1
    static let pageSize: UInt64 = 1 << 7
    static let pageDirectoryCount = 4

    /// PML4, PDPT and the page directories as one contiguous block for `MachineLayout.pml4`
    /// (the PDPT and directories follow it page by page).
    public static func identityMap() -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: (2 + pageDirectoryCount) * 4096)
        bytes.writeLE(MachineLayout.pdpt.raw | present | writable, at: 0)
        for directory in 0..<pageDirectoryCount {
            let directoryAddress = MachineLayout.pageDirectories.raw + UInt64(directory) * 4096
            bytes.writeLE(directoryAddress | present | writable, at: 4096 + directory * 8)
            for entry in 0..<512 {
                let physical = (UInt64(directory) << 30) | (UInt64(entry) << 21)
                bytes.writeLE(physical | present | writable | pageSize, at: (2 + directory) * 4096 + entry * 8)
            }
        }
        return bytes
    }

    static func write(into memory: GuestMemory) throws(BootError) {
        try memory.bootWrite(identityMap(), at: MachineLayout.pml4, step: "page tables: writing the identity map")
    }
}
