/// `--net tap=NAME[,mac=XX:XX:XX:XX:XX:XX]`: a virtio-net device on the tap NAME, which kvmrun
/// creates if no interface of that name exists (and then removes on exit).
public struct NetOption: Equatable, Sendable {
    /// Longest interface name Linux takes (IFNAMSIZ - 1).
    public static let maxNameLength = 15

    public var tap: String
    public var mac: [UInt8]?

    public init(tap: String, mac: [UInt8]? = nil) {
        self.tap = tap
        self.mac = mac
    }

    /// Parses the option text of the `index`th --net. (The index is not needed here: the default
    /// MAC comes from it at attach time, see `defaultMAC`.)
    public static func parse(_ text: String, index: Int) throws(VMMError) -> NetOption {
        func problem(_ message: String) -> VMMError { .config("--net \(text): \(message)") }
        var tap: String?
        var mac: [UInt8]?
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            guard let equals = part.firstIndex(of: "=") else {
                throw problem("'\(part)' is not key=value (expected tap=NAME[,mac=XX:XX:XX:XX:XX:XX])")
            }
            let key = part[..<equals], value = String(part[part.index(after: equals)...])
            switch key {
            case "tap":
                guard tap == nil else { throw problem("tap= is given twice") }
                if let reason = invalidNameReason(value) { throw problem("tap name '\(value)' \(reason)") }
                tap = value
            case "mac":
                guard mac == nil else { throw problem("mac= is given twice") }
                mac = try parseMAC(value, problem)
            default:
                throw problem("unknown key '\(key)' (known: tap, mac)")
            }
        }
        guard let tap else { throw problem("tap=NAME is required") }
        return NetOption(tap: tap, mac: mac)
    }

    /// Why `name` cannot be an interface name (Linux's dev_valid_name), or nil.
    static func invalidNameReason(_ name: String) -> String? {
        if name.isEmpty { return "is empty" }
        if name.utf8.count > maxNameLength { return "is longer than \(maxNameLength) bytes" }
        if name == "." || name == ".." { return "is not a valid interface name" }
        if let bad = name.first(where: { $0 == "/" || $0 == ":" || $0 == "%" || $0.isWhitespace || !$0.isASCII }) {
            return "contains '\(bad)', which interface names cannot"
        }
        return nil
    }

    static func parseMAC(_ text: String, _ problem: (String) -> VMMError) throws(VMMError) -> [UInt8] {
        let fields = text.split(separator: ":", omittingEmptySubsequences: false)
        guard fields.count == 6, fields.allSatisfy({ $0.count == 2 && $0.allSatisfy(\.isHexDigit) }),
              case let bytes = fields.compactMap({ UInt8($0, radix: 16) }), bytes.count == 6 else {
            throw problem("mac '\(text)' is not six hex pairs like 52:54:00:12:34:56")
        }
        guard bytes[0] & 1 == 0 else { throw problem("mac \(text) is a multicast address (lowest bit of the first byte set)") }
        guard bytes != [0, 0, 0, 0, 0, 0] else { throw problem("mac \(text) is all zeros") }
        return bytes
    }

    /// A locally administered unicast MAC for the `index`th device of process `pid`:
    /// 02:4b:XX:XX:XX:II (4b for "K"), so VMs of different processes differ.
    public static func defaultMAC(index: Int, pid: Int32) -> [UInt8] {
        let id = UInt32(bitPattern: pid)
        return [0x02, 0x4B, UInt8(truncatingIfNeeded: id >> 16), UInt8(truncatingIfNeeded: id >> 8),
                UInt8(truncatingIfNeeded: id), UInt8(truncatingIfNeeded: index)]
    }

    /// `aa:bb:cc:dd:ee:ff`.
    public static func format(_ mac: [UInt8]) -> String {
        mac.map { byte in
            let digits = String(byte, radix: 16)
            return digits.count == 1 ? "0" + digits : digits
        }.joined(separator: ":")
    }
}
