// The rtnetlink dumps and link changes the sandbox network needs: links, addresses (IPv4 and
// IPv6), the main table's unicast routes; set a link up with an MTU, delete a link.
import CNetlink

struct LinkRecord: Equatable, Sendable {
    var index: Int32
    var name: String
    var flags: UInt32
    var mtu: UInt32
    var mac: [UInt8]
    /// IFLA_INFO_KIND: "veth", "tun", "" for lo and kinds that report none.
    var kind: String
    var isLoopback: Bool { flags & KVMRUN_IFF_LOOPBACK != 0 }
}

struct AddressRecord: Equatable, Sendable {
    var index: Int32
    var family: UInt8
    var bytes: [UInt8]
    var prefix: UInt8
    var scope: UInt8
}

struct RouteRecord: Equatable, Sendable {
    var family: UInt8
    var destination: [UInt8]?
    var prefix: UInt8
    var gateway: [UInt8]?
    var outputIndex: Int32?
    var scope: UInt8
}

extension RouteSocket {
    static func linkHeader(index: Int32, flags: UInt32 = 0, change: UInt32 = 0) -> [UInt8] {
        [0, 0, 0, 0] + RouteMessage.le32(UInt32(bitPattern: index)) + RouteMessage.le32(flags) + RouteMessage.le32(change)
    }

    func links() throws(NetlinkFailure) -> [LinkRecord] {
        try exchange(type: KVMRUN_RTM_GETLINK, flags: KVMRUN_NLM_F_DUMP, header: Self.linkHeader(index: 0), what: "RTM_GETLINK dump").map { message in
            var kind = ""
            if let info = message.attribute(KVMRUN_IFLA_LINKINFO), let nested = try? RouteMessage.attributes(info) {
                kind = nested.first { $0.type == KVMRUN_IFLA_INFO_KIND }.map { RouteMessage.string($0.value) } ?? ""
            }
            return LinkRecord(index: Int32(bitPattern: RouteMessage.le32(message.header, 4)),
                              name: message.attribute(KVMRUN_IFLA_IFNAME).map(RouteMessage.string) ?? "",
                              flags: RouteMessage.le32(message.header, 8),
                              mtu: message.attribute(KVMRUN_IFLA_MTU).map { RouteMessage.field32($0, 0) } ?? 0,
                              mac: message.attribute(KVMRUN_IFLA_ADDRESS) ?? [], kind: kind)
        }
    }

    func link(named name: String) throws(NetlinkFailure) -> LinkRecord? { try links().first { $0.name == name } }

    /// Addresses of both families (ifaddrmsg: family, prefixlen, flags, scope, index).
    func addresses() throws(NetlinkFailure) -> [AddressRecord] {
        try exchange(type: KVMRUN_RTM_GETADDR, flags: KVMRUN_NLM_F_DUMP, header: [UInt8](repeating: 0, count: 8), what: "RTM_GETADDR dump")
            .compactMap { message in
                let family = message.header[0]
                guard family == KVMRUN_AF_INET || family == KVMRUN_AF_INET6,
                      let bytes = message.attribute(KVMRUN_IFA_LOCAL) ?? message.attribute(KVMRUN_IFA_ADDRESS) else { return nil }
                return AddressRecord(index: Int32(bitPattern: RouteMessage.le32(message.header, 4)), family: family, bytes: bytes,
                                     prefix: message.header[1], scope: message.header[3])
            }
    }

    /// The main table's unicast routes of both families (rtmsg: family, dst_len, src_len, tos,
    /// table, protocol, scope, type, flags).
    func routes() throws(NetlinkFailure) -> [RouteRecord] {
        try exchange(type: KVMRUN_RTM_GETROUTE, flags: KVMRUN_NLM_F_DUMP, header: [UInt8](repeating: 0, count: 12), what: "RTM_GETROUTE dump")
            .compactMap { message in
                let header = message.header
                let table = message.attribute(KVMRUN_RTA_TABLE).map { RouteMessage.field32($0, 0) } ?? UInt32(header[4])
                guard header[0] == KVMRUN_AF_INET || header[0] == KVMRUN_AF_INET6,
                      table == UInt32(KVMRUN_RT_TABLE_MAIN), header[7] == KVMRUN_RTN_UNICAST else { return nil }
                return RouteRecord(family: header[0], destination: message.attribute(KVMRUN_RTA_DST), prefix: header[1],
                                   gateway: message.attribute(KVMRUN_RTA_GATEWAY),
                                   outputIndex: message.attribute(KVMRUN_RTA_OIF).map { Int32(bitPattern: RouteMessage.field32($0, 0)) },
                                   scope: header[6])
            }
    }

    /// Brings link `index` up with `mtu`.
    func setUp(index: Int32, mtu: UInt32, what: String) throws(NetlinkFailure) {
        try exchange(type: KVMRUN_RTM_NEWLINK, flags: KVMRUN_NLM_F_ACK,
                     header: Self.linkHeader(index: index, flags: KVMRUN_IFF_UP, change: KVMRUN_IFF_UP),
                     attributes: [.uint32(KVMRUN_IFLA_MTU, mtu)], what: what)
    }

    func deleteLink(index: Int32, what: String) throws(NetlinkFailure) {
        try exchange(type: KVMRUN_RTM_DELLINK, flags: KVMRUN_NLM_F_ACK, header: Self.linkHeader(index: index), what: what)
    }
}
