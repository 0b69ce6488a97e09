import VMM

/// Function names of an ELF vmlinux by address, from its symbol table, so that initcall
/// addresses from a kernel built without KALLSYMS (the guest prints them raw) read as names.
/// Only the section headers, the symbol table and its string table are read.
struct KernelSymbols {
    private var names: [UInt64: String] = [:]

    var isEmpty: Bool { names.isEmpty }

    /// Reads `path`'s .symtab; an empty table when the file has none (a bzImage, a stripped
    /// vmlinux) or cannot be read: the report then keeps the addresses.
    init(path: String) {
        guard let file = try? KernelFile(path: path, role: "kernel") else {
            self.init(source: [UInt8]())
            return
        }
        self.init(source: file)
    }

    init(source file: some KernelSource) {
        func bytes(_ offset: UInt64, _ count: UInt64) -> [UInt8]? {
            guard count <= 64 << 20, offset <= file.size, count <= file.size - offset else { return nil }
            var result = [UInt8](repeating: 0, count: Int(count))
            let ok = result.withUnsafeMutableBytes { buffer in
                (try? file.read(into: buffer, at: offset, what: "kernel symbols")) != nil
            }
            return ok ? result : nil
        }
        func le<T: FixedWidthInteger>(_ bytes: [UInt8], _ offset: Int, _: T.Type) -> T {
            var value: T = 0
            for index in 0..<MemoryLayout<T>.size where offset + index < bytes.count {
                value |= T(truncatingIfNeeded: bytes[offset + index]) << (8 * index)
            }
            return value
        }
        guard let header = bytes(0, 64), header.starts(with: [0x7F, 0x45, 0x4C, 0x46]), header[4] == 2 else { return }
        let shoff = le(header, 40, UInt64.self)
        let shentsize = UInt64(le(header, 58, UInt16.self)), shnum = UInt64(le(header, 60, UInt16.self))
        guard shentsize == 64, let sections = bytes(shoff, shentsize * shnum) else { return }
        for index in 0..<Int(shnum) where le(sections, index * 64 + 4, UInt32.self) == 2 {   // SHT_SYMTAB
            let base = index * 64
            let link = Int(le(sections, base + 40, UInt32.self))
            guard link < Int(shnum),
                  let table = bytes(le(sections, base + 24, UInt64.self), le(sections, base + 32, UInt64.self)),
                  let strings = bytes(le(sections, link * 64 + 24, UInt64.self), le(sections, link * 64 + 32, UInt64.self))
            else { continue }
            for entry in stride(from: 0, to: table.count - 23, by: 24) where table[entry + 4] & 0xF == 2 {   // STT_FUNC
                let nameOffset = Int(le(table, entry, UInt32.self))
                guard nameOffset < strings.count else { continue }
                let name = strings[nameOffset...].prefix { $0 != 0 }
                names[le(table, entry + 8, UInt64.self)] = String(decoding: name, as: UTF8.self)
            }
        }
    }

    /// The address of the function `name` (the first found), for tests.
    func address(of name: String) -> UInt64? { names.first { $0.value == name }?.key }

    /// "0xffffffff81caa290" → "pty_init"; anything else is returned as it is.
    func name(for text: String) -> String {
        guard text.hasPrefix("0x"), let address = UInt64(text.dropFirst(2), radix: 16), let name = names[address] else { return text }
        return name
    }
}
