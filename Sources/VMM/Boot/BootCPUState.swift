import Memory

/// One segment register as KVM's kvm_segment describes it (limit in bytes).
public struct SegmentState: Equatable, Sendable {
    public var selector: UInt16
    public var base: UInt64
    public var limit: UInt32
    public var type: UInt8
    public var present: UInt8
    public var dpl: UInt8
    public var db: UInt8
    public var s: UInt8
    public var l: UInt8
    public var g: UInt8

    public init(selector: UInt16, base: UInt64, limit: UInt32, type: UInt8, present: UInt8,
                dpl: UInt8, db: UInt8, s: UInt8, l: UInt8, g: UInt8) {
        self.selector = selector; self.base = base; self.limit = limit; self.type = type
        self.present = present; self.dpl = dpl; self.db = db; self.s = s; self.l = l; self.g = g
    }
}

/// The boot vCPU's registers at the kernel's first instruction, free of KVM types. The KVM
/// layer copies `code` into CS, `data` into DS/ES/FS/GS/SS and `tss` into TR.
public struct BootCPUState: Equatable, Sendable {
    public var rip: UInt64
    public var rsp: UInt64
    public var rbp: UInt64
    public var rsi: UInt64
    public var rbx: UInt64
    public var rflags: UInt64
    public var cr0: UInt64
    public var cr3: UInt64
    public var cr4: UInt64
    public var efer: UInt64
    public var code: SegmentState
    public var data: SegmentState
    public var tss: SegmentState
    public var gdtBase: UInt64
    public var gdtLimit: UInt16
    public var idtBase: UInt64
    public var idtLimit: UInt16

    public static let cr0PE: UInt64 = 1 << 0
    public static let cr0ET: UInt64 = 1 << 4
    public static let cr0PG: UInt64 = 1 << 31
    public static let cr4PAE: UInt64 = 1 << 5
    public static let eferLME: UInt64 = 1 << 8
    public static let eferLMA: UInt64 = 1 << 10
    /// Bit 1 of RFLAGS is reserved and reads as one; interrupts are off.
    public static let rflagsReserved: UInt64 = 1 << 1

    /// Linux 64-bit boot protocol: long mode with paging on the identity map, RSI = zero page.
    public static func longMode(entry: GuestAddress, zeroPage: GuestAddress) -> BootCPUState {
        let gdt = GDT.longMode
        return BootCPUState(
            rip: entry.raw, rsp: MachineLayout.bootStackTop.raw, rbp: MachineLayout.bootStackTop.raw,
            rsi: zeroPage.raw, rbx: 0, rflags: rflagsReserved,
            cr0: cr0PE | cr0ET | cr0PG, cr3: MachineLayout.pml4.raw, cr4: cr4PAE, efer: eferLME | eferLMA,
            code: GDT.segment(gdt[1], selector: GDT.codeSelector),
            data: GDT.segment(gdt[2], selector: GDT.dataSelector),
            tss: GDT.segment(gdt[3], selector: GDT.tssSelector),
            gdtBase: MachineLayout.gdt.raw, gdtLimit: GDT.limit,
            idtBase: MachineLayout.idt.raw, idtLimit: GDT.idtLimit)
    }

    /// PVH boot ABI: 32-bit protected mode, paging off, flat 4 GiB segments, EBX = start info.
    public static func pvh(entry: GuestAddress, startInfo: GuestAddress) -> BootCPUState {
        let gdt = GDT.protectedMode
        return BootCPUState(
            rip: entry.raw, rsp: MachineLayout.bootStackTop.raw, rbp: MachineLayout.bootStackTop.raw,
            rsi: 0, rbx: startInfo.raw, rflags: rflagsReserved,
            cr0: cr0PE | cr0ET, cr3: 0, cr4: 0, efer: 0,
            code: GDT.segment(gdt[1], selector: GDT.codeSelector),
            data: GDT.segment(gdt[2], selector: GDT.dataSelector),
            tss: GDT.segment(gdt[3], selector: GDT.tssSelector),
            gdtBase: MachineLayout.gdt.raw, gdtLimit: GDT.limit,
            idtBase: MachineLayout.idt.raw, idtLimit: GDT.idtLimit)
    }
}
