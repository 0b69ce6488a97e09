import Memory

/// The boot GDT and IDT. Selectors: 0x08 code, 0x10 data, 0x18 TSS.
public enum GDT {
    public static let codeSelector: UInt16 = 0x08
    public static let dataSelector: UInt16 = 0x10
    public static let tssSelector: UInt16 = 0x18

    /// For the 64-bit entry: null, 64-bit code (L=1), flat data, 32-bit TSS.
    public static let longMode: [UInt64] = [0, 0x00AF_9B00_0000_FFFF, 0x00CF_9300_0000_FFFF, 0x008F_8B00_0000_FFFF]
    /// For the PVH entry: null, 32-bit flat code (D=1), flat data, 104-byte 32-bit TSS.
    public static let protectedMode: [UInt64] = [0, 0x00CF_9B00_0000_FFFF, 0x00CF_9300_0000_FFFF, 0x0000_8B00_0000_0067]

    /// GDTR limit: bytes minus one.
    public static let limit = UInt16(4 * 8 - 1)
    /// The IDT holds one empty gate, so any exception before the kernel's IDT is a triple
    /// fault (a clean VM exit) rather than a jump through garbage.
    public static let idtLimit = UInt16(8 - 1)

    /// The segment register contents a descriptor loads, with the limit in bytes (scaled by
    /// 4 KiB when G is set), as KVM's kvm_segment wants it.
    public static func segment(_ descriptor: UInt64, selector: UInt16) -> SegmentState {
        let rawLimit = UInt32(descriptor & 0xFFFF) | UInt32((descriptor >> 48) & 0xF) << 16
        let base = (descriptor >> 16) & 0xFF_FFFF | ((descriptor >> 56) & 0xFF) << 24
        let access = UInt8((descriptor >> 40) & 0xFF)
        let flags = UInt8((descriptor >> 52) & 0xF)
        let g = (flags >> 3) & 1
        return SegmentState(
            selector: selector, base: base,
            limit: g == 1 ? rawLimit << 12 | 0xFFF : rawLimit,
            type: access & 0xF, present: access >> 7, dpl: (access >> 5) & 3,
            db: (flags >> 2) & 1, s: (access >> 4) & 1, l: (flags >> 1) & 1, g: g)
    }

    static func bytes(_ table: [UInt64]) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: table.count * 8)
        for (index, descriptor) in table.enumerated() { bytes.writeLE(descriptor, at: index * 8) }
        return bytes
    }

    /// Writes `table` at `MachineLayout.gdt` and a zero IDT at `MachineLayout.idt`.
    static func write(_ table: [UInt64], into memory: GuestMemory) throws(BootError) {
        try memory.bootWrite(bytes(table), at: MachineLayout.gdt, step: "GDT: writing the descriptor table")
        try memory.bootZero(at: MachineLayout.idt, length: UInt64(idtLimit) + 1, step: "IDT: clearing the table")
    }
}
