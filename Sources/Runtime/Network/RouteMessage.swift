// rtnetlink messages as bytes, for the host side (links, addresses, routes, qdiscs, filters): a
// builder for requests, nested attributes included, and a parser for the kernel's answers.
// Pure (no sockets): every length is checked before use. The guest agent has its own copy of
// this idea (Sources/Agent/Guest/NetlinkMessage.swift); the two targets share nothing.
import Sys

/// One netlink attribute to send: bytes, or attributes nested inside it (the caller ORs
/// NLA_F_NESTED into the type where the kernel wants it, as tc(8) does).
enum RouteAttribute: Equatable, Sendable {
    case bytes(UInt16, [UInt8])
    case nested(UInt16, [RouteAttribute])

    static func string(_ type: UInt16, _ text: String) -> RouteAttribute { .bytes(type, Array(text.utf8) + [0]) }
    static func uint32(_ type: UInt16, _ value: UInt32) -> RouteAttribute { .bytes(type, RouteMessage.le32(value)) }

    func encoded() -> [UInt8] {
        let type: UInt16, value: [UInt8]
        switch self {
        case let .bytes(kind, bytes): (type, value) = (kind, bytes)
        case let .nested(kind, children): (type, value) = (kind, children.flatMap { $0.encoded() })
        }
        var out = RouteMessage.le16(UInt16(4 + value.count)) + RouteMessage.le16(type) + value
        while out.count % 4 != 0 { out.append(0) }
        return out
    }
}

/// One netlink message: header fields, the family header (ifinfomsg, ifaddrmsg, rtmsg, tcmsg)
/// and the attributes after it. For control messages (NLMSG_ERROR, NLMSG_DONE) `header` is the
/// whole body and `attributes` is empty.
struct RouteMessage: Sendable {
    var type: UInt16
    var flags: UInt16
    var sequence: UInt32 = 0
    var header: [UInt8]
    var attributes: [(type: UInt16, value: [UInt8])] = []

    /// The family header's size for a message type (linux/rtnetlink.h numbering).
    static func headerSize(_ type: UInt16) -> Int {
        switch type {
        case 16...19: 16   // RTM_*LINK: ifinfomsg
        case 20...23: 8    // RTM_*ADDR: ifaddrmsg
        case 24...27: 12   // RTM_*ROUTE: rtmsg
        case 36...47: 20   // RTM_*QDISC, *TCLASS, *TFILTER: tcmsg
        default: 0
        }
    }

    static func align(_ length: Int) -> Int { (length + 3) & ~3 }

    /// The request as bytes: nlmsghdr, header, attributes, each padded to 4 bytes.
    static func request(type: UInt16, flags: UInt16, sequence: UInt32, header: [UInt8], attributes: [RouteAttribute]) -> [UInt8] {
        var body = header
        while body.count % 4 != 0 { body.append(0) }
        for attribute in attributes { body += attribute.encoded() }
        return le32(UInt32(16 + body.count)) + le16(type) + le16(flags) + le32(sequence) + le32(0) + body
    }

    func attribute(_ type: UInt16) -> [UInt8]? { attributes.first { $0.type == type }?.value }

    /// Every message in one datagram from the kernel; throws on any length that does not fit.
    static func parse(_ bytes: [UInt8]) throws(NetlinkFailure) -> [RouteMessage] {
        var messages: [RouteMessage] = []
        var offset = 0
        while offset + 16 <= bytes.count {
            let length = Int(le32(bytes, offset))
            guard length >= 16, offset + length <= bytes.count else {
                throw .malformed("message length \(length) at offset \(offset) exceeds the \(bytes.count)-byte datagram")
            }
            let type = le16(bytes, offset + 4), flags = le16(bytes, offset + 6), sequence = le32(bytes, offset + 8)
            let bodyStart = offset + 16, end = offset + length
            if type < 16 {
                messages.append(RouteMessage(type: type, flags: flags, sequence: sequence, header: Array(bytes[bodyStart..<end])))
            } else {
                let size = headerSize(type)
                guard bodyStart + size <= end else {
                    throw .malformed("message type \(type): \(length - 16) bytes, shorter than its \(size)-byte header")
                }
                messages.append(RouteMessage(type: type, flags: flags, sequence: sequence, header: Array(bytes[bodyStart..<(bodyStart + size)]),
                                             attributes: try attributes(bytes, from: bodyStart + align(size), to: end)))
            }
            offset += align(length)
        }
        return messages
    }

    /// The attributes (length, type, value, padded to 4) in bytes[start..<end]; also used for
    /// nested ones (IFLA_LINKINFO, TCA_OPTIONS). The type loses its NLA_F_NESTED/BYTEORDER bits.
    static func attributes(_ bytes: [UInt8], from start: Int = 0, to end: Int? = nil) throws(NetlinkFailure) -> [(type: UInt16, value: [UInt8])] {
        let end = min(end ?? bytes.count, bytes.count)
        var attributes: [(UInt16, [UInt8])] = []
        var cursor = start
        while cursor + 4 <= end {
            let length = Int(le16(bytes, cursor))
            guard length >= 4, cursor + length <= end else {
                throw .malformed("attribute length \(length) at offset \(cursor) runs past its message")
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
    /// A 4-byte field of a header, 0 when the header is too short.
    static func field32(_ bytes: [UInt8], _ at: Int) -> UInt32 { bytes.count >= at + 4 ? le32(bytes, at) : 0 }
    static func string(_ bytes: [UInt8]) -> String { String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self) }
}

/// Why an rtnetlink request failed: the request, the errno and the kernel's own text when it
/// sent one (extended acknowledgement), or an answer that did not parse.
struct NetlinkFailure: Error, CustomStringConvertible, Sendable {
    var request: String
    var errno: Int32
    var kernelText: String

    static func malformed(_ text: String) -> NetlinkFailure { NetlinkFailure(request: "malformed answer", errno: 0, kernelText: text) }

    var description: String {
        let base = errno == 0 ? request : SystemError(call: request, errno: errno).description
        return kernelText.isEmpty ? base : "\(base): \(kernelText)"
    }
}
