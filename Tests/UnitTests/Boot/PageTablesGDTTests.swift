import Memory
import Testing
@testable import VMM

@Suite("Page tables, GDT and vCPU state")
struct PageTablesGDTTests {
    @Test func identityMapsFourGiBWithTwoMiBPages() {
        let tables = PageTables.identityMap()
        #expect(tables.count == 6 * 4096)
        #expect(tables.readLE(UInt64.self, at: 0) == 0xA003)                   // PML4[0] → PDPT
        #expect(tables.readLE(UInt64.self, at: 8) == 0)
        for directory in 0..<4 {                                              // PDPT[i] → PD i
            #expect(tables.readLE(UInt64.self, at: 4096 + directory * 8) == 0xB003 + UInt64(directory) * 0x1000)
        }
        #expect(tables.readLE(UInt64.self, at: 4096 + 4 * 8) == 0)
        #expect(tables.readLE(UInt64.self, at: 2 * 4096) == 0x83)             // 0 → 0
        #expect(tables.readLE(UInt64.self, at: 2 * 4096 + 8) == 0x20_0083)   // 2 MiB → 2 MiB
        #expect(tables.readLE(UInt64.self, at: 6 * 4096 - 8) == 0xFFE0_0083)  // last 2 MiB below 4 GiB
        // Every PD entry maps its own address.
        for index in 0..<2048 {
            let entry = tables.readLE(UInt64.self, at: 2 * 4096 + index * 8)!
            #expect(entry == UInt64(index) << 21 | 0x83)
        }
    }

    @Test func longModeSegmentsDecode() {
        let code = GDT.segment(GDT.longMode[1], selector: 0x08)
        #expect(code == SegmentState(selector: 0x08, base: 0, limit: 0xFFFF_FFFF, type: 0xB, present: 1,
                                     dpl: 0, db: 0, s: 1, l: 1, g: 1))
        let data = GDT.segment(GDT.longMode[2], selector: 0x10)
        #expect(data == SegmentState(selector: 0x10, base: 0, limit: 0xFFFF_FFFF, type: 0x3, present: 1,
                                     dpl: 0, db: 1, s: 1, l: 0, g: 1))
        let tss = GDT.segment(GDT.longMode[3], selector: 0x18)
        #expect(tss.type == 0xB && tss.s == 0 && tss.present == 1)
    }

    @Test func gdtBytes() {
        let bytes = GDT.bytes(GDT.longMode)
        #expect(bytes.count == 32)
        #expect(bytes.readLE(UInt64.self, at: 8) == 0x00AF_9B00_0000_FFFF)
        #expect(bytes.readLE(UInt64.self, at: 16) == 0x00CF_9300_0000_FFFF)
        #expect(bytes.readLE(UInt64.self, at: 24) == 0x008F_8B00_0000_FFFF)
    }

    @Test func longModeState() {
        let state = BootCPUState.longMode(entry: GuestAddress(0x10_0200), zeroPage: MachineLayout.zeroPage)
        #expect(state.rip == 0x10_0200)
        #expect(state.rsi == 0x7000)
        #expect(state.rsp == 0x8FF0 && state.rbp == 0x8FF0)
        #expect(state.rflags == 2)
        #expect(state.cr0 == 0x8000_0011)
        #expect(state.cr3 == 0x9000)
        #expect(state.cr4 == 0x20)
        #expect(state.efer == 0x500)
        #expect(state.code.l == 1 && state.code.selector == 0x08)
        #expect(state.gdtBase == 0x500 && state.gdtLimit == 31)
        #expect(state.idtBase == 0x520 && state.idtLimit == 7)
    }

    @Test func pvhState() {
        let state = BootCPUState.pvh(entry: GuestAddress(0x100_0100), startInfo: MachineLayout.pvhStartInfo)
        #expect(state.rip == 0x100_0100)
        #expect(state.rbx == 0x6000)
        #expect(state.cr0 & BootCPUState.cr0PG == 0)
        #expect(state.cr0 & BootCPUState.cr0PE == 1)
        #expect(state.cr4 == 0 && state.efer == 0)
        #expect(state.code == SegmentState(selector: 0x08, base: 0, limit: 0xFFFF_FFFF, type: 0xB, present: 1,
                                           dpl: 0, db: 1, s: 1, l: 0, g: 1))
        #expect(state.data.db == 1 && state.data.limit == 0xFFFF_FFFF)
        #expect(state.tss.limit == 0x67 && state.tss.g == 0)
    }
}
