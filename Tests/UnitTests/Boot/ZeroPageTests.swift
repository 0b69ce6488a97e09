import Memory
import Testing
@testable import VMM

@Suite("Zero page (boot_params)")
struct ZeroPageTests {
    @Test func offsetsMatchBootProtocol() {
        #expect(BootParamsOffset.extRamdiskImage == 0x0C0)
        #expect(BootParamsOffset.extRamdiskSize == 0x0C4)
        #expect(BootParamsOffset.extCmdLinePtr == 0x0C8)
        #expect(BootParamsOffset.e820Entries == 0x1E8)
        #expect(BootParamsOffset.setupHeader == 0x1F1)
        #expect(BootParamsOffset.bootFlag == 0x1FE)
        #expect(BootParamsOffset.headerMagic == 0x202)
        #expect(BootParamsOffset.typeOfLoader == 0x210)
        #expect(BootParamsOffset.ramdiskImage == 0x218)
        #expect(BootParamsOffset.cmdLinePtr == 0x228)
        #expect(BootParamsOffset.cmdlineSize == 0x238)
        #expect(BootParamsOffset.initSize == 0x260)
        #expect(BootParamsOffset.e820Table == 0x2D0)
        // 128 entries of 20 bytes end inside the page.
        #expect(BootParamsOffset.e820Table + E820.maxEntries * 20 <= ZeroPage.size)
    }

    @Test func copiesTheKernelsSetupHeader() throws {
        let image = try BzImage.parse(BzImageFixture().bytes())
        #expect(image.header.rawBytes.count == 0x26C - 0x1F1)
        let page = ZeroPage(setupHeader: image.header.rawBytes).bytes
        #expect(page.count == 4096)
        #expect(page.readLE(UInt16.self, at: 0x1FE) == 0xAA55)
        #expect(Array(page[0x202..<0x206]) == Array("HdrS".utf8))
        #expect(page.readLE(UInt16.self, at: 0x206) == 0x020F)
        #expect(page.readLE(UInt32.self, at: 0x260) == 0x40_0000)
        #expect(page[0x210] == 0xFF)
        // Nothing past the header was copied.
        #expect(page[0x26C...].allSatisfy { $0 == 0 })
    }

    @Test func synthesizedHeaderForELF() {
        let page = ZeroPage.synthesized().bytes
        #expect(page.readLE(UInt16.self, at: 0x1FE) == 0xAA55)
        #expect(page.readLE(UInt32.self, at: 0x202) == 0x5372_6448)  // "HdrS"
        #expect(page[0x210] == 0xFF)
        #expect(page[0x211] & 1 == 1)                                 // LOADED_HIGH
        #expect(page.readLE(UInt32.self, at: 0x230) == 0x100_0000)
    }

    @Test func commandLineRamdiskAndE820() throws {
        var page = ZeroPage.synthesized()
        page.setCommandLine(at: GuestAddress(0x20000))
        page.setRamdisk(at: GuestAddress(0x1_2345_6000), size: 0x2_0000_1000)
        let map = E820.map(ramLayout: try MachineLayout.ramLayout(memorySize: 5 * .gib))
        try page.setE820(map)
        let bytes = page.bytes
        #expect(bytes.readLE(UInt32.self, at: 0x228) == 0x20000)
        #expect(bytes.readLE(UInt32.self, at: 0x0C8) == 0)
        #expect(bytes.readLE(UInt32.self, at: 0x218) == 0x2345_6000)
        #expect(bytes.readLE(UInt32.self, at: 0x0C0) == 0x1)
        #expect(bytes.readLE(UInt32.self, at: 0x21C) == 0x1000)
        #expect(bytes.readLE(UInt32.self, at: 0x0C4) == 0x2)
        #expect(bytes[0x1E8] == 4)
        for (index, entry) in map.enumerated() {
            let offset = 0x2D0 + index * 20
            #expect(bytes.readLE(UInt64.self, at: offset) == entry.address)
            #expect(bytes.readLE(UInt64.self, at: offset + 8) == entry.size)
            #expect(bytes.readLE(UInt32.self, at: offset + 16) == entry.type.rawValue)
        }
    }

    @Test func tooManyE820EntriesAreRejected() {
        var page = ZeroPage.synthesized()
        let entries = (0..<129).map { E820Entry(address: UInt64($0) << 30, size: 4096, type: .ram) }
        #expect(throws: BootError.self) { try page.setE820(entries) }
    }
}
