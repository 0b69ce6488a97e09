import Memory
import Testing
@testable import VMM

@Suite("MP table")
struct MPTableTests {
    static func sum<C: Collection>(_ bytes: C) -> UInt8 where C.Element == UInt8 { bytes.reduce(0) { $0 &+ $1 } }

    @Test(arguments: [1, 2, 4, 64, 254])
    func checksumsAndCounts(cpus: Int) throws {
        let base = MachineLayout.mpTable.raw
        let bytes = try MPTable.build(cpus: cpus)
        #expect(bytes.count == MPTable.size(cpus: cpus))
        #expect(base + UInt64(bytes.count) <= 0x10_0000)
        // Floating pointer.
        #expect(Array(bytes[0..<4]) == Array("_MP_".utf8))
        #expect(bytes[8] == 1 && bytes[9] == 4)
        #expect(Self.sum(bytes[0..<16]) == 0)
        let configOffset = Int(UInt64(bytes.readLE(UInt32.self, at: 4)!) - base)
        #expect(configOffset == 16)
        // Configuration table.
        let config = Array(bytes[configOffset...])
        #expect(Array(config[0..<4]) == Array("PCMP".utf8))
        let length = Int(config.readLE(UInt16.self, at: 4)!)
        #expect(length == config.count)
        #expect(Self.sum(config[0..<length]) == 0)
        #expect(config.readLE(UInt32.self, at: 36) == 0xFEE0_0000)
        #expect(Int(config.readLE(UInt16.self, at: 34)!) == cpus + 28)

        // Walk the entries.
        var offset = 44, processors = 0, ioInterrupts = 0, localInterrupts: [[UInt8]] = []
        while offset < length {
            switch config[offset] {
            case 0:
                #expect(Int(config[offset + 1]) == processors)
                #expect(config[offset + 2] == 0x14)
                #expect(config[offset + 3] == (processors == 0 ? 3 : 1))
                processors += 1; offset += 20
            case 1:
                #expect(Array(config[(offset + 2)..<(offset + 8)]) == Array("ISA   ".utf8)); offset += 8
            case 2:
                #expect(Int(config[offset + 1]) == cpus)
                #expect(config[offset + 2] == 0x11)
                #expect(config.readLE(UInt32.self, at: offset + 4) == 0xFEC0_0000); offset += 8
            case 3:
                #expect(config[offset + 5] == UInt8(ioInterrupts))        // bus IRQ
                #expect(config[offset + 7] == UInt8(ioInterrupts))        // IOAPIC pin
                ioInterrupts += 1; offset += 8
            case 4:
                localInterrupts.append(Array(config[offset..<(offset + 8)])); offset += 8
            default:
                Issue.record("unknown entry type \(config[offset])"); return
            }
        }
        #expect(processors == cpus)
        #expect(ioInterrupts == 24)
        #expect(localInterrupts.count == 2)
        #expect(localInterrupts[0][1] == 3 && localInterrupts[0][7] == 0)            // ExtINT → LINT0
        #expect(localInterrupts[1][1] == 1 && localInterrupts[1][6] == 0xFF && localInterrupts[1][7] == 1)  // NMI → LINT1
    }

    @Test(arguments: [0, 255, -1])
    func rejectsCPUCounts(cpus: Int) {
        let error = #expect(throws: BootError.self) { try MPTable.build(cpus: cpus) }
        #expect(error?.description.hasPrefix("MP table: ") == true)
    }

    @Test func rejectsTablesPastOneMiB() {
        let error = #expect(throws: BootError.self) { try MPTable.build(cpus: 254, at: GuestAddress(0xFF000)) }
        #expect(error?.description.contains("do not fit below 1 MiB") == true)
    }
}
