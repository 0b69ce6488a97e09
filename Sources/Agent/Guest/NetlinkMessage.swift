// rtnetlink messages as bytes: a builder for requests and a parser for the kernel's answers.
// Pure (no sockets), so malformed input can be tested: every length is checked before use.

/// One netlink message: header fields, the fixed family header (ifinfomsg, ifaddrmsg, rtmsg)
/// and the attributes after it.
public struct NetlinkMessage: Equatable, Sendable {
    public var type: UInt16
    public var flags: UInt16
    public var sequence: UInt32
    /// The family header (16 bytes ifinfomsg, 8 ifaddrmsg, 12 rtmsg) or, for NLMSG_ERROR, the
    /// 4-byte error code followed by the request's header.
    public var header: [UInt8]
    public var attributes: [(type: UInt16, value: [UInt8])]

    public init(type: UInt16, flags: UInt16, sequence: UInt32 = 0, header: [UInt8], attributes: [(type: UInt16, value: [UInt8])] = []) {
        self.type = type
        self.flags = flags
        self.sequence = sequence
        self.header = header
        self.attributes = attributes
    }

    public static func == (a: NetlinkMessage, b: NetlinkMessage) -> Bool {
        a.type == b.type && a.flags == b.flags && a.sequence == b.sequence && a.header == b.header
            && a.attributes.map(\.type) == b.attributes.map(\.type) && a.attributes.map(\.value) == b.attributes.map(\.value)
    }

    static func align(_ length: Int) -> Int { (length + 3) & ~3 }

    /// The message as bytes (nlmsghdr, header, attributes, each padded to 4 bytes).
    public func encoded() -> [UInt8] {
        var body = header
        while body.count % 4 != 0 { body.append(0) }
        for attribute in attributes {
            body += Self.le16(UInt16(4 + attribute.value.count)) + Self.le16(attribute.type) + attribute.value
            while body.count % 4 != 0 { body.append(0) }
        }
        let length = UInt32(16 + body.count)
        return Self.le32(length) + Self.le16(type) + Self.le16(flags) + Self.le32(sequence) + Self.le32(0) + body
    }

    public func attribute(_ type: UInt16) -> [UInt8]? { attributes.first { $0.type == type }?.value }

    /// Parses every message in `bytes` (a datagram from the kernel). `headerSize` gives the
    /// family header's size for a message type. Throws on any length that does not fit.
    public static func parse(_ bytes: [UInt8], headerSize: (UInt16) -> Int) throws(NetlinkError) -> [NetlinkMessage] {
        var messages: [NetlinkMessage] = []
        var offset = 0
        while offset + 16 <= bytes.count {
            let length = Int(le32(bytes, offset))
            guard length >= 16, offset + length <= bytes.count else {
                throw NetlinkError.malformed("message length \(length) at offset \(offset) exceeds the \(bytes.count)-byte datagram")
            }
            let type = le16(bytes, offset + 4), flags = le16(bytes, offset + 6), sequence = le32(bytes, offset + 8)
            let bodyStart = offset + 16
            // Control messages (NLMSG_NOOP, ERROR, DONE, OVERRUN: types below 16) carry no attributes.
            let control = type < 16
            let size = control ? min(headerSize(type), length - 16) : headerSize(type)
            guard bodyStart + size <= offset + length else {
                throw NetlinkError.malformed("message type \(type): \(length - 16) bytes, shorter than its \(size)-byte header")
            }
            let attributes = control ? [] : try Self.attributes(bytes, from: bodyStart + align(size), to: offset + length)
            messages.append(NetlinkMessage(type: type, flags: flags, sequence: sequence,
                                           header: Array(bytes[bodyStart..<(bodyStart + size)]), attributes: attributes))
            offset += align(length)
        }
        return messages
    }

    /// The attributes (rtattr: length, type, value, padded to 4) in bytes[start..<end]; also
    /// for nested attributes (IFLA_LINKINFO, RTA_METRICS).
    public static func attributes(_ bytes: [UInt8], from start: Int = 0, to end: Int? = nil) throws(NetlinkError) -> [(type: UInt16, value: [UInt8])] {
        let end = min(end ?? bytes.count, bytes.count)
        var attributes: [(UInt16, [UInt8])] = []
        var cursor = start
        while cursor + 4 <= end {
            let length = Int(le16(bytes, cursor))
            guard length >= 4, cursor + length <= end else {
                throw NetlinkError.malformed("attribute length \(length) at offset \(cursor) runs past its message")
            }
            attributes.append((le16(bytes, cursor + 2) & 0x3fff, Array(bytes[(cursor + 4)..<(cursor + length)])))
            cursor += align(length)
        }
        return attributes
    }

    static func le16(_ value: UInt16) -> [UInt8] { [UInt8(value & 0xff), UInt8(value >> 8)] }
    static func le32(_ value: UInt32) -> [UInt8] { (0..<4).map { UInt8((value >> (8 * UInt32($0))) & 0xff) } }
    static func le16(_ bytes: [UInt8], _ at: Int) -> UInt16 { UInt16(bytes[at]) | UInt16(bytes[at + 1]) << 8 }
    static func le32(_ bytes: [UInt8], _ at: Int) -> UInt32 {
        UInt32(bytes[at]) | UInt32(bytes[at + 1]) << 8 | UInt32(bytes[at + 2]) << 16 | UInt32(bytes[at + 3]) << 24
    }
}

public enum NetlinkError: Error, Equatable, CustomStringConvertible, Sendable {
    case malformed(String)
    /// The kernel's NLMSG_ERROR answer: which request, the errno.
    case kernel(request: String, errno: Int32)
    case system(String)

    public var description: String {
        switch self {
        case .malformed(let text): return "rtnetlink: malformed answer: \(text)"
        case .kernel(let request, let errno): return "rtnetlink \(request): \(String(cString: strerrorText(errno))) (errno \(errno))"
        case .system(let text): return "rtnetlink: \(text)"
        }
    }
}

/// IPv4 addresses as text and bytes.
public enum IPv4 {
    public static func parse(_ text: String) -> [UInt8]? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var bytes: [UInt8] = []
        for part in parts {
            guard !part.isEmpty, part.count <= 3, let value = UInt8(part) else { return nil }
            bytes.append(value)
        }
        return bytes
    }

    public static func format(_ bytes: [UInt8]) -> String { bytes.prefix(4).map(String.init).joined(separator: ".") }

    /// "10.0.0.0/8" → (address, 8); a bare address has the full prefix (32).
    public static func parseCIDR(_ text: String) -> (address: [UInt8], prefix: UInt8)? {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), let address = parse(String(parts[0])) else { return nil }
        guard parts.count == 2 else { return (address, 32) }
        guard let prefix = UInt8(parts[1]), prefix <= 32 else { return nil }
        return (address, prefix)
    }

    /// A mask ("255.255.255.0") or a prefix length ("24") as a prefix length.
    public static func prefixLength(mask: String) -> UInt8? {
        if let prefix = UInt8(mask), prefix <= 32 { return prefix }
        guard let bytes = parse(mask) else { return nil }
        let value = bytes.reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        let ones = value.leadingZeroBitCount == 0 ? (~value).leadingZeroBitCount : 0
        guard value == (ones == 0 ? 0 : UInt32.max << (32 - UInt32(ones))) else { return nil }
        return UInt8(ones)
    }
}
