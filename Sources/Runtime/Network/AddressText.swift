// Addresses as the runtime writes them: IPv4/IPv6 through inet_ntop, MACs as lower-case pairs.
#if canImport(Glibc)
import Glibc
#endif
import CNetlink

enum AddressText {
    /// "10.88.0.5", "fd00::5"; "" for bytes that are neither 4 nor 16 long.
    static func ip(_ bytes: [UInt8]) -> String {
        let family: Int32
        switch bytes.count {
        case 4: family = AF_INET
        case 16: family = AF_INET6
        default: return ""
        }
        var text = [CChar](repeating: 0, count: 64)
        // SAFETY: inet_ntop reads 4 or 16 bytes (checked above) and writes at most 64 into `text`.
        let done = bytes.withUnsafeBytes { source in inet_ntop(family, source.baseAddress, &text, socklen_t(text.count)) }
        guard done != nil else { return "" }
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    static func mac(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef")
        return bytes.map { String([digits[Int($0 >> 4)], digits[Int($0 & 0xf)]]) }.joined(separator: ":")
    }

    /// Whether an IPv6 address is link-local (fe80::/10): the guest derives its own from the MAC.
    static func isIPv6LinkLocal(_ bytes: [UInt8]) -> Bool { bytes.count == 16 && bytes[0] == 0xfe && bytes[1] & 0xc0 == 0x80 }

    /// Why `name` cannot be an interface name (the kernel's dev_valid_name), or nil.
    static func invalidInterfaceName(_ name: String) -> String? {
        let limit = Int(KVMRUN_NET_IFNAMSIZ) - 1
        if name.isEmpty { return "is empty" }
        if name.utf8.count > limit { return "is longer than \(limit) bytes" }
        if name == "." || name == ".." { return "is not a valid interface name" }
        if let bad = name.first(where: { $0 == "/" || $0 == ":" || $0.isWhitespace || !$0.isASCII }) {
            return "contains '\(bad)', which interface names cannot"
        }
        return nil
    }
}
