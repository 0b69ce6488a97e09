// Kata's network calls over rtnetlink: ListInterfaces, ListRoutes, UpdateInterface (the link
// found by its MAC address, else by name: renamed, MTU set, its IPv4 addresses replaced,
// brought up), UpdateRoutes (the main table's routes replaced: link-scope routes first, so
// the gateways of the others are reachable).

public enum Network {
    public struct Interface: Equatable, Sendable {
        public var name: String
        public var hardwareAddress: String
        public var mtu: UInt64
        public var addresses: [(address: String, prefix: UInt8)]
        public var flags: UInt32
        public var kind: String

        public init(name: String, hardwareAddress: String, mtu: UInt64, addresses: [(address: String, prefix: UInt8)], flags: UInt32 = 0, kind: String = "") {
            self.name = name
            self.hardwareAddress = hardwareAddress
            self.mtu = mtu
            self.addresses = addresses
            self.flags = flags
            self.kind = kind
        }

        public static func == (a: Interface, b: Interface) -> Bool {
            a.name == b.name && a.hardwareAddress == b.hardwareAddress && a.mtu == b.mtu && a.flags == b.flags && a.kind == b.kind
                && a.addresses.map(\.address) == b.addresses.map(\.address) && a.addresses.map(\.prefix) == b.addresses.map(\.prefix)
        }
    }

    public struct Route: Equatable, Sendable {
        /// "" for the default route, else "a.b.c.d/len".
        public var destination: String
        public var gateway: String
        public var device: String
        public var source: String
        public var scope: UInt8
        public var flags: UInt32
        public var mtu: UInt32

        public init(destination: String, gateway: String = "", device: String, source: String = "", scope: UInt8 = 0, flags: UInt32 = 0, mtu: UInt32 = 0) {
            self.destination = destination
            self.gateway = gateway
            self.device = device
            self.source = source
            self.scope = scope
            self.flags = flags
            self.mtu = mtu
        }
    }

    static func mac(_ bytes: [UInt8]) -> String {
        bytes.map { byte in
            let digits = Array("0123456789abcdef")
            return String([digits[Int(byte >> 4)], digits[Int(byte & 0xf)]])
        }.joined(separator: ":")
    }

    static func failed(_ error: NetlinkError, _ call: String) -> AgentError { AgentError(.internal, "\(call): \(error)") }

    public static func interfaces() throws(AgentError) -> [Interface] {
        do {
            let addresses = try Netlink.addresses()
            return try Netlink.links().map { link in
                Interface(name: link.name, hardwareAddress: mac(link.hardwareAddress), mtu: UInt64(link.mtu),
                          addresses: addresses.filter { $0.index == link.index }.map { (IPv4.format($0.address), $0.prefix) },
                          flags: link.flags, kind: link.kind)
            }
        } catch {
            throw failed(error, "ListInterfaces")
        }
    }

    public static func routes() throws(AgentError) -> [Route] {
        do {
            let names = Dictionary(try Netlink.links().map { ($0.index, $0.name) }, uniquingKeysWith: { first, _ in first })
            return try Netlink.routes().map { route in
                Route(destination: route.destination.map { "\(IPv4.format($0))/\(route.prefix)" } ?? "",
                      gateway: route.gateway.map(IPv4.format) ?? "", device: route.outputIndex.flatMap { names[$0] } ?? "",
                      source: route.source.map(IPv4.format) ?? "", scope: route.scope, flags: route.flags, mtu: route.mtu ?? 0)
            }
        } catch {
            throw failed(error, "ListRoutes")
        }
    }

    /// UpdateInterface; returns the interface as it is afterwards.
    public static func update(_ wanted: Interface, device: String) throws(AgentError) -> Interface {
        var parsed: [(address: [UInt8], prefix: UInt8)] = []
        for entry in wanted.addresses {
            guard let address = IPv4.parse(entry.address), entry.prefix <= 32 else {
                throw AgentError.invalid("UpdateInterface: \"\(entry.address)/\(entry.prefix)\" is not an IPv4 address with a prefix length")
            }
            parsed.append((address, entry.prefix))
        }
        do {
            let links = try Netlink.links()
            let byMAC = wanted.hardwareAddress.isEmpty ? nil : links.first { mac($0.hardwareAddress) == wanted.hardwareAddress.lowercased() }
            let byName = links.first { $0.name == (device.isEmpty ? wanted.name : device) }
            guard let link = byMAC ?? byName else {
                throw AgentError.notFound("UpdateInterface: no link with MAC \(wanted.hardwareAddress) or name \(device.isEmpty ? wanted.name : device)")
            }
            if !wanted.name.isEmpty, wanted.name != link.name {
                try Netlink.setLink(index: link.index, up: false)
                try Netlink.setLink(index: link.index, name: wanted.name)
            }
            if wanted.mtu > 0, UInt32(clamping: wanted.mtu) != link.mtu { try Netlink.setLink(index: link.index, mtu: UInt32(clamping: wanted.mtu)) }
            for old in try Netlink.addresses() where old.index == link.index {
                try Netlink.deleteAddress(index: link.index, address: old.address, prefix: old.prefix)
            }
            for entry in parsed { try Netlink.addAddress(index: link.index, address: entry.address, prefix: entry.prefix) }
            try Netlink.setLink(index: link.index, up: true)
            let name = wanted.name.isEmpty ? link.name : wanted.name
            guard let result = try interfaces().first(where: { $0.name == name }) else {
                throw AgentError.failed("UpdateInterface: \(name) disappeared")
            }
            return result
        } catch let error as NetlinkError {
            throw failed(error, "UpdateInterface")
        } catch let error as AgentError {
            throw error
        } catch {
            throw AgentError.failed("UpdateInterface: \(error)")
        }
    }

    /// UpdateRoutes: replaces the main table's non-kernel routes; returns the routes after.
    public static func replaceRoutes(_ wanted: [Route]) throws(AgentError) -> [Route] {
        do {
            let links = try Netlink.links()
            var requested: [Netlink.Route] = []
            for route in wanted {
                guard let link = links.first(where: { $0.name == route.device }) else {
                    throw AgentError.invalid("UpdateRoutes: route to \(route.destination.isEmpty ? "default" : route.destination): no device \"\(route.device)\"")
                }
                var destination: [UInt8]?
                var prefix: UInt8 = 0
                if !route.destination.isEmpty, route.destination != "default" {
                    guard let cidr = IPv4.parseCIDR(route.destination) else { throw AgentError.invalid("UpdateRoutes: bad destination \"\(route.destination)\"") }
                    destination = cidr.address
                    prefix = cidr.prefix
                }
                let gateway = try route.gateway.isEmpty ? nil : address(route.gateway, "gateway")
                let source = try route.source.isEmpty ? nil : address(route.source, "source")
                let scope = route.scope != 0 ? route.scope : (gateway == nil ? Netlink.scopeLink : Netlink.scopeUniverse)
                requested.append(Netlink.Route(destination: destination, prefix: prefix, gateway: gateway, outputIndex: link.index,
                                            source: source, scope: scope, flags: route.flags, mtu: route.mtu == 0 ? nil : route.mtu))
            }
            for old in try Netlink.routes() where old.protocolID != Netlink.protocolKernel {
                try Netlink.deleteRoute(old)
            }
            for route in requested where route.gateway == nil { try Netlink.addRoute(route) }
            for route in requested where route.gateway != nil { try Netlink.addRoute(route) }
            return try routes()
        } catch let error as NetlinkError {
            throw failed(error, "UpdateRoutes")
        } catch let error as AgentError {
            throw error
        } catch {
            throw AgentError.failed("UpdateRoutes: \(error)")
        }
    }

    private static func address(_ text: String, _ what: String) throws(AgentError) -> [UInt8] {
        guard let bytes = IPv4.parse(text) else { throw AgentError.invalid("UpdateRoutes: bad \(what) \"\(text)\"") }
        return bytes
    }
}
