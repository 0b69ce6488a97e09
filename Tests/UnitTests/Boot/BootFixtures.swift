#if canImport(Glibc)
import Glibc
#endif
import Memory
@testable import VMM

/// A synthetic bzImage: boot sector + setup sectors with a setup header, then a fake
/// protected-mode kernel. Each field can be broken to make a malformed fixture.
struct BzImageFixture {
    var setupSects: UInt8 = 4
    var bootFlag: UInt16 = 0xAA55
    var magic: [UInt8] = Array("HdrS".utf8)
    var version: UInt16 = 0x020F
    var loadFlags: UInt8 = 0x01
    var xloadFlags: UInt16 = 0x03
    var kernelSize = 8192
    var sysSize: UInt32?
    var initSize: UInt32 = 0x40_0000
    var prefAddress: UInt64 = 0x100_0000
    var kernelAlignment: UInt32 = 0x20_0000
    var relocatable: UInt8 = 1
    var initrdAddrMax: UInt32 = 0x7FFF_FFFF
    var cmdlineSize: UInt32 = 2047
    /// 0x202 + this byte is the end of the setup header (0x26C for protocol 2.15).
    var headerLengthByte: UInt8 = 0x6A

    func bytes() -> [UInt8] {
        let sectors = setupSects == 0 ? 4 : Int(setupSects)
        var file = [UInt8](repeating: 0, count: (sectors + 1) * 512 + kernelSize)
        file[0x1F1] = setupSects
        file.writeLE(sysSize ?? UInt32((kernelSize + 15) / 16), at: 0x1F4)
        file.writeLE(bootFlag, at: 0x1FE)
        file[0x200] = 0xEB
        file[0x201] = headerLengthByte
        file.writeBytes(magic, at: 0x202)
        file.writeLE(version, at: 0x206)
        file[0x211] = loadFlags
        file.writeLE(initrdAddrMax, at: 0x22C)
        file.writeLE(kernelAlignment, at: 0x230)
        file[0x234] = relocatable
        file.writeLE(xloadFlags, at: 0x236)
        file.writeLE(cmdlineSize, at: 0x238)
        file.writeLE(prefAddress, at: 0x258)
        file.writeLE(initSize, at: 0x260)
        // A recognisable kernel payload.
        for index in 0..<kernelSize { file[(sectors + 1) * 512 + index] = UInt8(truncatingIfNeeded: index &* 7 &+ 1) }
        return file
    }
}

/// A synthetic ELF64 vmlinux: header, program headers, an optional PT_NOTE with a GNU note
/// and the Xen PVH note, then the PT_LOAD data.
struct ElfFixture {
    struct Segment {
        var physical: UInt64
        var virtual: UInt64
        var data: [UInt8]
        var memorySize: UInt64
    }

    var elfClass: UInt8 = 2
    var machine: UInt16 = 62
    var type: UInt16 = 2
    var entry: UInt64 = 0x100_0000
    var segments = [Segment(physical: 0x100_0000, virtual: 0xFFFF_FFFF_8100_0000,
                            data: [UInt8](repeating: 0xCC, count: 4096), memorySize: 0x3000)]
    var pvhEntry: UInt64?
    var pvhDescSize = 4
    /// Overrides p_offset of PT_LOAD `index` (to point past the end of the file).
    var badOffset: (index: Int, offset: UInt64)?

    func notes() -> [UInt8] {
        var notes: [UInt8] = []
        func note(name: [UInt8], type: UInt32, desc: [UInt8]) {
            var header = [UInt8](repeating: 0, count: 12)
            header.writeLE(UInt32(name.count), at: 0)
            header.writeLE(UInt32(desc.count), at: 4)
            header.writeLE(type, at: 8)
            notes += header + name + [UInt8](repeating: 0, count: (4 - name.count % 4) % 4)
            notes += desc + [UInt8](repeating: 0, count: (4 - desc.count % 4) % 4)
        }
        note(name: Array("GNU\0".utf8), type: 3, desc: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20])
        if let pvh = pvhEntry {
            var desc = [UInt8](repeating: 0, count: pvhDescSize)
            if pvhDescSize == 8 { desc.writeLE(pvh, at: 0) } else if pvhDescSize >= 4 { desc.writeLE(UInt32(pvh), at: 0) }
            note(name: Array("Xen\0".utf8), type: 18, desc: desc)
        }
        return notes
    }

    func bytes() -> [UInt8] {
        let notes = notes()
        let phnum = segments.count + 1
        var file = [UInt8](repeating: 0, count: 64 + phnum * 56)
        file.writeBytes([0x7F, 0x45, 0x4C, 0x46, elfClass, 1, 1], at: 0)
        file.writeLE(type, at: 16)
        file.writeLE(machine, at: 18)
        file.writeLE(UInt32(1), at: 20)
        file.writeLE(entry, at: 24)
        file.writeLE(UInt64(64), at: 32)
        file.writeLE(UInt16(64), at: 52)
        file.writeLE(UInt16(56), at: 54)
        file.writeLE(UInt16(phnum), at: 56)
        // PT_NOTE first, as in vmlinux.
        var data = notes
        var phdr = [UInt8](repeating: 0, count: 56)
        phdr.writeLE(UInt32(4), at: 0)
        phdr.writeLE(UInt64(file.count), at: 8)
        phdr.writeLE(UInt64(notes.count), at: 32)
        phdr.writeLE(UInt64(notes.count), at: 40)
        file.writeBytes(phdr, at: 64)
        for (index, segment) in segments.enumerated() {
            var phdr = [UInt8](repeating: 0, count: 56)
            phdr.writeLE(UInt32(1), at: 0)
            let offset = badOffset?.index == index ? badOffset!.offset : UInt64(file.count + data.count)
            phdr.writeLE(offset, at: 8)
            phdr.writeLE(segment.virtual, at: 16)
            phdr.writeLE(segment.physical, at: 24)
            phdr.writeLE(UInt64(segment.data.count), at: 32)
            phdr.writeLE(segment.memorySize, at: 40)
            file.writeBytes(phdr, at: 64 + (index + 1) * 56)
            data += segment.data
        }
        return file + data
    }
}

enum TestMemory {
    /// Guest RAM laid out as the VMM does it.
    static func make(_ size: UInt64) throws -> GuestMemory {
        try GuestMemory(layout: try MachineLayout.ramLayout(memorySize: size))
    }
}

/// Kernels built by the firmware helper, if present.
enum FirmwareKernel {
    static func path(_ name: String, file: String = #filePath) -> String {
        // <root>/Tests/UnitTests/Boot/BootFixtures.swift → <root>/firmware/out/<name>
        var parts = file.split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(4)
        return parts.joined(separator: "/") + "/firmware/out/" + name
    }

    static func exists(_ name: String) -> Bool { access(path(name), R_OK) == 0 }

    static func read(_ name: String) -> [UInt8]? {
        guard let handle = fopen(path(name), "rb") else { return nil }
        defer { fclose(handle) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            // SAFETY: fread writes at most chunk.count bytes into chunk's own buffer.
            let count = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, handle) }
            if count == 0 { break }
            bytes += chunk[0..<count]
        }
        return bytes
    }
}
