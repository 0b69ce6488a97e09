import Memory

/// Intel MultiProcessor Specification 1.4 tables: how a kernel without ACPI finds the
/// CPUs, the IOAPIC and the ISA interrupt routing. Layout at the table address:
/// the 16-byte floating pointer ("_MP_"), then the configuration table ("PCMP": 44-byte
/// header, then entries).
public enum MPTable {
    /// LAPIC IDs 0..<N plus the IOAPIC at ID N must stay below the broadcast ID 0xFF.
    public static let maxCPUs = 254
    public static let localAPICAddress: UInt32 = 0xFEE0_0000
    public static let ioAPICAddress: UInt32 = 0xFEC0_0000
    public static let ioAPICPins = 24
    static let localAPICVersion: UInt8 = 0x14
    static let ioAPICVersion: UInt8 = 0x11
    static let specRevision: UInt8 = 4
    /// Family 6 in the CPU signature; FPU and APIC in the feature flags.
    static let cpuSignature: UInt32 = 0x600
    static let cpuFeatures: UInt32 = 0x201

    static let floatingPointerSize = 16
    static let headerSize = 44
    enum EntryType: UInt8 { case processor = 0, bus = 1, ioAPIC = 2, ioInterrupt = 3, localInterrupt = 4 }
    enum InterruptType: UInt8 { case int = 0, nmi = 1, extINT = 3 }

    /// Total bytes for `cpus` processors.
    public static func size(cpus: Int) -> Int {
        floatingPointerSize + headerSize + cpus * 20 + 8 + 8 + ioAPICPins * 8 + 2 * 8
    }

    /// Builds floating pointer and configuration table for placement at `address`.
    public static func build(cpus: Int, at address: GuestAddress = MachineLayout.mpTable) throws(BootError) -> [UInt8] {
        guard (1...maxCPUs).contains(cpus) else {
            throw .mpTable("\(cpus) vCPUs is outside 1...\(maxCPUs)")
        }
        let total = size(cpus: cpus)
        guard address.raw + UInt64(total) <= MachineLayout.highMemory.raw else {
            throw .mpTable("\(total) bytes for \(cpus) vCPUs at \(address) do not fit below 1 MiB")
        }
        var entries: [UInt8] = []
        for cpu in 0..<cpus {
            var entry = [UInt8](repeating: 0, count: 20)
            entry[0] = EntryType.processor.rawValue
            entry[1] = UInt8(cpu)                      // local APIC ID
            entry[2] = localAPICVersion
            entry[3] = cpu == 0 ? 0x03 : 0x01          // enabled, bootstrap processor
            entry.writeLE(cpuSignature, at: 4)
            entry.writeLE(cpuFeatures, at: 8)
            entries += entry
        }
        entries += [EntryType.bus.rawValue, 0] + Array("ISA   ".utf8)
        let ioAPICID = UInt8(cpus)
        var ioAPIC: [UInt8] = [EntryType.ioAPIC.rawValue, ioAPICID, ioAPICVersion, 0x01, 0, 0, 0, 0]
        ioAPIC.writeLE(ioAPICAddress, at: 4)
        entries += ioAPIC
        for irq in 0..<ioAPICPins {
            // type, interrupt type, flags (conforming polarity/trigger), bus 0, bus IRQ, IOAPIC, pin
            entries += [EntryType.ioInterrupt.rawValue, InterruptType.int.rawValue, 0, 0, 0,
                        UInt8(irq), ioAPICID, UInt8(irq)]
        }
        // ExtINT (the 8259) on LINT0 of the BSP, NMI on LINT1 of every CPU.
        entries += [EntryType.localInterrupt.rawValue, InterruptType.extINT.rawValue, 0, 0, 0, 0, 0, 0]
        entries += [EntryType.localInterrupt.rawValue, InterruptType.nmi.rawValue, 0, 0, 0, 0, 0xFF, 1]

        var header = [UInt8](repeating: 0, count: headerSize)
        header.writeBytes(Array("PCMP".utf8), at: 0)
        header.writeLE(UInt16(headerSize + entries.count), at: 4)
        header[6] = specRevision
        header.writeBytes(Array("KVMRUN  ".utf8), at: 8)       // OEM ID, 8 bytes
        header.writeBytes(Array("KVMRUN VM   ".utf8), at: 16)  // product ID, 12 bytes
        header.writeLE(UInt16(cpus + 1 + 1 + ioAPICPins + 2), at: 34)
        header.writeLE(localAPICAddress, at: 36)
        var table = header + entries
        table[7] = checksumByte(table)

        var pointer = [UInt8](repeating: 0, count: floatingPointerSize)
        pointer.writeBytes(Array("_MP_".utf8), at: 0)
        pointer.writeLE(UInt32(address.raw) + UInt32(floatingPointerSize), at: 4)
        pointer[8] = 1                                         // length in 16-byte units
        pointer[9] = specRevision
        pointer[10] = checksumByte(pointer)
        return pointer + table
    }

    static func write(cpus: Int, into memory: GuestMemory) throws(BootError) {
        let bytes = try build(cpus: cpus)
        try memory.bootWrite(bytes, at: MachineLayout.mpTable, step: "MP table: writing \(bytes.count) bytes")
    }
}
