import Memory

/// BIOS e820 memory types (also the PVH memmap types).
public enum E820Type: UInt32, Sendable {
    case ram = 1
    case reserved = 2
}

public struct E820Entry: Equatable, Sendable {
    public var address: UInt64
    public var size: UInt64
    public var type: E820Type

    public init(address: UInt64, size: UInt64, type: E820Type) {
        self.address = address
        self.size = size
        self.type = type
    }

    public var end: UInt64 { address + size }
}

/// The guest's physical memory map as the kernel sees it.
public enum E820 {
    public static let maxEntries = 128
    /// Bytes per entry in the zero page: u64 addr, u64 size, u32 type.
    static let entrySize = 20

    /// RAM [0, EBDA), reserved [EBDA, 1 MiB) for the MP table and the BIOS area, RAM from
    /// 1 MiB to the end of the low region, and each further region (from 4 GiB) as RAM.
    public static func map(ramLayout: [(base: GuestAddress, size: UInt64)]) -> [E820Entry] {
        var entries: [E820Entry] = []
        for region in ramLayout.sorted(by: { $0.base < $1.base }) {
            let end = region.base.raw + region.size
            guard region.base.raw == 0 else {
                entries.append(E820Entry(address: region.base.raw, size: region.size, type: .ram))
                continue
            }
            let ebda = MachineLayout.ebda.raw, high = MachineLayout.highMemory.raw
            entries.append(E820Entry(address: 0, size: min(end, ebda), type: .ram))
            if end > ebda {
                entries.append(E820Entry(address: ebda, size: min(end, high) - ebda, type: .reserved))
            }
            if end > high {
                entries.append(E820Entry(address: high, size: end - high, type: .ram))
            }
        }
        return entries
    }
}
