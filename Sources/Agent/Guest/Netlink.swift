// rtnetlink over a NETLINK_ROUTE socket: dumps of links, addresses and routes, and the
// changes UpdateInterface and UpdateRoutes make. One socket per call; answers parsed by
// NetlinkMessage (every length checked). IPv4 only: the guest kernel has no IPv6.
#if canImport(Glibc)
import Glibc
#endif
import CAgent

public enum Netlink {
    // linux/netlink.h, linux/rtnetlink.h, linux/if_link.h, linux/if_addr.h
    static let done: UInt16 = 3, error: UInt16 = 2
    static let newLink: UInt16 = 16, getLink: UInt16 = 18
    static let newAddress: UInt16 = 20, deleteAddress: UInt16 = 21, getAddress: UInt16 = 22
    static let newRoute: UInt16 = 24, deleteRoute: UInt16 = 25, getRoute: UInt16 = 26
    static let request: UInt16 = 0x1, acknowledge: UInt16 = 0x4, dump: UInt16 = 0x300
    static let create: UInt16 = 0x400, exclusive: UInt16 = 0x200, replace: UInt16 = 0x100
    static let linkAddress: UInt16 = 1, linkName: UInt16 = 3, linkMTU: UInt16 = 4, linkInfo: UInt16 = 18, linkInfoKind: UInt16 = 1
    static let addressAddress: UInt16 = 1, addressLocal: UInt16 = 2
    static let routeDestination: UInt16 = 1, routeOutput: UInt16 = 4, routeGateway: UInt16 = 5, routePreferredSource: UInt16 = 7
    static let routeMetrics: UInt16 = 8, routeTable: UInt16 = 15, metricMTU: UInt16 = 2
    static let familyIPv4: UInt8 = 2
    static let tableMain: UInt8 = 254
    public static let scopeUniverse: UInt8 = 0, scopeLink: UInt8 = 253, scopeHost: UInt8 = 254
    static let protocolBoot: UInt8 = 3, protocolKernel: UInt8 = 2
    static let typeUnicast: UInt8 = 1
    static let flagUp: UInt32 = 1

    static func headerSize(_ type: UInt16) -> Int {
        switch type {
        case 16...19: return 16            // ifinfomsg
        case 20...23: return 8             // ifaddrmsg
        case 24...27: return 12            // rtmsg
        case error: return 4 + 16          // errno + the request's nlmsghdr
        case done: return 4
        default: return 0
        }
    }

    // MARK: socket

    nonisolated(unsafe) static var sequence: UInt32 = 1

    /// Sends `message`, reads answers until the dump ends or the acknowledgement comes.
    static func exchange(_ message: NetlinkMessage, what: String) throws(NetlinkError) -> [NetlinkMessage] {
        let fd = socket(16 /* AF_NETLINK */, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0 /* NETLINK_ROUTE */)
        guard fd >= 0 else { throw .system("socket: errno \(errno)") }
        defer { close(fd) }
        var local = sockaddr_nl()
        local.nl_family = 16
        // SAFETY: binds the local sockaddr_nl by its own size.
        let bound = withUnsafePointer(to: &local) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_nl>.size)) } }
        guard bound == 0 else { throw .system("bind: errno \(errno)") }
        var outgoing = message
        outgoing.sequence = sequence
        sequence &+= 1
        let bytes = outgoing.encoded()
        // SAFETY: sends the encoded bytes.
        guard bytes.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, 0) }) == bytes.count else {
            throw .system("send \(what): errno \(errno)")
        }
        var answers: [NetlinkMessage] = []
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            // SAFETY: receives into the local buffer, at most its size.
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard count > 0 else {
                if count < 0, errno == EINTR { continue }
                throw .system("recv \(what): errno \(errno)")
            }
            for answer in try NetlinkMessage.parse(Array(buffer[0..<count]), headerSize: headerSize) where answer.sequence == outgoing.sequence {
                switch answer.type {
                case done: return answers
                case error:
                    let code = Int32(bitPattern: NetlinkMessage.le32(answer.header, 0))
                    if code == 0 { return answers }   // the acknowledgement
                    throw .kernel(request: what, errno: -code)
                default: answers.append(answer)
                }
            }
        }
    }

    // MARK: model

    public struct Link: Equatable, Sendable {
        public var index: Int32
        public var name: String
        public var flags: UInt32
        public var mtu: UInt32
        public var hardwareAddress: [UInt8]
        public var kind: String
    }

    public struct Address: Equatable, Sendable {
        public var index: Int32
        public var address: [UInt8]
        public var prefix: UInt8
    }

    public struct Route: Equatable, Sendable {
        public var destination: [UInt8]?
        public var prefix: UInt8
        public var gateway: [UInt8]?
        public var outputIndex: Int32?
        public var source: [UInt8]?
        public var scope: UInt8
        public var flags: UInt32
        public var mtu: UInt32?
        public var protocolID: UInt8

        public init(destination: [UInt8]?, prefix: UInt8, gateway: [UInt8]?, outputIndex: Int32?, source: [UInt8]?, scope: UInt8,
                    flags: UInt32 = 0, mtu: UInt32? = nil, protocolID: UInt8 = 3) {
            self.destination = destination
            self.prefix = prefix
            self.gateway = gateway
            self.outputIndex = outputIndex
            self.source = source
            self.scope = scope
            self.flags = flags
            self.mtu = mtu
            self.protocolID = protocolID
        }
    }

    static func int32(_ bytes: [UInt8]) -> Int32 { bytes.count >= 4 ? Int32(bitPattern: NetlinkMessage.le32(bytes, 0)) : 0 }
    static func uint32(_ bytes: [UInt8]) -> UInt32 { bytes.count >= 4 ? NetlinkMessage.le32(bytes, 0) : 0 }
    static func string(_ bytes: [UInt8]) -> String { String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self) }

    static func linkHeader(index: Int32, flags: UInt32 = 0, change: UInt32 = 0) -> [UInt8] {
        [0, 0] + NetlinkMessage.le16(0) + NetlinkMessage.le32(UInt32(bitPattern: index)) + NetlinkMessage.le32(flags) + NetlinkMessage.le32(change)
    }

    // MARK: dumps

    public static func links() throws(NetlinkError) -> [Link] {
        try exchange(NetlinkMessage(type: getLink, flags: request | dump, header: linkHeader(index: 0)), what: "RTM_GETLINK").map { message in
            let header = message.header
            var kind = ""
            if let info = message.attribute(linkInfo), let nested = try? NetlinkMessage.attributes(info) {
                kind = nested.first { $0.type == linkInfoKind }.map { string($0.value) } ?? ""
            }
            return Link(index: int32(Array(header[4..<8])), name: message.attribute(linkName).map(string) ?? "",
                        flags: uint32(Array(header[8..<12])), mtu: message.attribute(linkMTU).map(uint32) ?? 0,
                        hardwareAddress: message.attribute(linkAddress) ?? [], kind: kind)
        }
    }

    public static func addresses() throws(NetlinkError) -> [Address] {
        let header: [UInt8] = [familyIPv4, 0, 0, 0] + NetlinkMessage.le32(0)
        return try exchange(NetlinkMessage(type: getAddress, flags: request | dump, header: header), what: "RTM_GETADDR").compactMap { message in
            guard message.header[0] == familyIPv4, let address = message.attribute(addressLocal) ?? message.attribute(addressAddress) else { return nil }
            return Address(index: int32(Array(message.header[4..<8])), address: address, prefix: message.header[1])
        }
    }

    /// Routes of the main table.
    public static func routes() throws(NetlinkError) -> [Route] {
        let header: [UInt8] = [familyIPv4] + [UInt8](repeating: 0, count: 11)
        return try exchange(NetlinkMessage(type: getRoute, flags: request | dump, header: header), what: "RTM_GETROUTE").compactMap { message in
            let header = message.header
            let table = message.attribute(routeTable).map(uint32) ?? UInt32(header[4])
            guard header[0] == familyIPv4, table == UInt32(tableMain), header[7] == typeUnicast else { return nil }
            var mtu: UInt32?
            if let metrics = message.attribute(routeMetrics), let nested = try? NetlinkMessage.attributes(metrics) {
                mtu = nested.first { $0.type == metricMTU }.map { uint32($0.value) }
            }
            return Route(destination: message.attribute(routeDestination), prefix: header[1], gateway: message.attribute(routeGateway),
                         outputIndex: message.attribute(routeOutput).map(int32), source: message.attribute(routePreferredSource),
                         scope: header[6], flags: uint32(Array(header[8..<12])), mtu: mtu, protocolID: header[5])
        }
    }

    // MARK: changes

    public static func link(named name: String) throws(NetlinkError) -> Link {
        guard let link = try links().first(where: { $0.name == name }) else { throw .kernel(request: "find link \(name)", errno: ENODEV) }
        return link
    }

    public static func setLinkUp(name: String) throws(NetlinkError) {
        try setLink(index: try link(named: name).index, up: true)
    }

    /// Changes a link: up/down, MTU, name (nil leaves each as it is).
    public static func setLink(index: Int32, up: Bool? = nil, mtu: UInt32? = nil, name: String? = nil) throws(NetlinkError) {
        var attributes: [(UInt16, [UInt8])] = []
        if let mtu { attributes.append((linkMTU, NetlinkMessage.le32(mtu))) }
        if let name { attributes.append((linkName, Array(name.utf8) + [0])) }
        let header = linkHeader(index: index, flags: up == true ? flagUp : 0, change: up == nil ? 0 : flagUp)
        _ = try exchange(NetlinkMessage(type: newLink, flags: request | acknowledge, header: header, attributes: attributes), what: "RTM_NEWLINK (index \(index))")
    }

    public static func addAddress(index: Int32, address: [UInt8], prefix: UInt8) throws(NetlinkError) {
        try changeAddress(newAddress, flags: create | replace, index: index, address: address, prefix: prefix)
    }

    public static func deleteAddress(index: Int32, address: [UInt8], prefix: UInt8) throws(NetlinkError) {
        try changeAddress(deleteAddress, flags: 0, index: index, address: address, prefix: prefix)
    }

    private static func changeAddress(_ type: UInt16, flags: UInt16, index: Int32, address: [UInt8], prefix: UInt8) throws(NetlinkError) {
        let header: [UInt8] = [familyIPv4, prefix, 0, scopeUniverse] + NetlinkMessage.le32(UInt32(bitPattern: index))
        let message = NetlinkMessage(type: type, flags: request | acknowledge | flags, header: header,
                                     attributes: [(addressLocal, address), (addressAddress, address)])
        _ = try exchange(message, what: "\(type == newAddress ? "RTM_NEWADDR" : "RTM_DELADDR") \(IPv4.format(address))/\(prefix)")
    }

    public static func addRoute(_ route: Route) throws(NetlinkError) {
        try changeRoute(newRoute, flags: create | replace, route)
    }

    public static func deleteRoute(_ route: Route) throws(NetlinkError) {
        try changeRoute(deleteRoute, flags: 0, route)
    }

    private static func changeRoute(_ type: UInt16, flags: UInt16, _ route: Route) throws(NetlinkError) {
        let header: [UInt8] = [familyIPv4, route.prefix, 0, 0, tableMain, route.protocolID, route.scope, typeUnicast] + NetlinkMessage.le32(route.flags)
        var attributes: [(UInt16, [UInt8])] = []
        if let destination = route.destination { attributes.append((routeDestination, destination)) }
        if let gateway = route.gateway { attributes.append((routeGateway, gateway)) }
        if let output = route.outputIndex { attributes.append((routeOutput, NetlinkMessage.le32(UInt32(bitPattern: output)))) }
        if let source = route.source { attributes.append((routePreferredSource, source)) }
        if let mtu = route.mtu, mtu > 0 {
            attributes.append((routeMetrics, NetlinkMessage.le16(8) + NetlinkMessage.le16(metricMTU) + NetlinkMessage.le32(mtu)))
        }
        let destination = route.destination.map { "\(IPv4.format($0))/\(route.prefix)" } ?? "default"
        _ = try exchange(NetlinkMessage(type: type, flags: request | acknowledge | flags, header: header, attributes: attributes),
                         what: "\(type == newRoute ? "RTM_NEWROUTE" : "RTM_DELROUTE") \(destination)")
    }
}
