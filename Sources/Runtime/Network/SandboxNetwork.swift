// A sandbox's network, Kata's way: the container engine (podman, CNI) gives the bundle a
// network namespace holding a veth; the sandbox reads its interface and routes, creates a TAP
// beside it, redirects traffic between the two with tc mirred (SandboxAttach.swift), and has
// the agent give the guest the same MAC, addresses and routes (AgentRequests.swift), so the
// container keeps the IP the engine assigned. All of it through rtnetlink (RouteSocket).
import CNetlink
import Logging

/// An interface of the namespace, as the guest gets it.
public struct NetworkInterface: Codable, Sendable, Equatable {
    public var name: String
    /// "aa:bb:cc:dd:ee:ff".
    public var mac: String
    public var mtu: UInt32
    /// "10.88.0.5/16", "fd00::5/64" (IPv6 link-local addresses are left out: the guest makes its own).
    public var addresses: [String]

    public init(name: String, mac: String, mtu: UInt32, addresses: [String]) {
        self.name = name
        self.mac = mac
        self.mtu = mtu
        self.addresses = addresses
    }
}

/// A route of the namespace's main table through its interface.
public struct NetworkRoute: Codable, Sendable, Equatable {
    /// "10.88.0.0/16"; "" for the IPv4 default route, "::/0" for the IPv6 one.
    public var destination: String
    /// "" when the destination is on the link.
    public var gateway: String
    public var device: String
    /// RT_SCOPE_*: 0 universe, 253 link.
    public var scope: UInt32

    public init(destination: String, gateway: String, device: String, scope: UInt32) {
        self.destination = destination
        self.gateway = gateway
        self.device = device
        self.scope = scope
    }
}

public struct SandboxNetwork: Codable, Sendable, Equatable {
    public var netnsPath: String
    /// The veth: the namespace's first interface other than lo (and other than TAPs).
    public var interface: NetworkInterface
    public var routes: [NetworkRoute]
    public var tapName: String

    public init(netnsPath: String, interface: NetworkInterface, routes: [NetworkRoute], tapName: String) {
        self.netnsPath = netnsPath
        self.interface = interface
        self.routes = routes
        self.tapName = tapName
    }

    /// Scans the namespace; nil when it has no interface but lo (then the sandbox has loopback
    /// only). With more than one candidate the first (lowest index) is used, with a warning.
    public static func scan(netnsPath: String, logger: Logger? = nil) throws(RuntimeError) -> (interface: NetworkInterface, routes: [NetworkRoute])? {
        let socket = try openSocket(in: netnsPath, step: "scan network \(netnsPath)")
        return try describe(socket, netnsPath: netnsPath, logger: logger).map { ($0.interface, $0.routes) }
    }

    /// A NETLINK_ROUTE socket opened inside the namespace (it stays bound to it).
    static func openSocket(in netnsPath: String, step: String) throws(RuntimeError) -> RouteSocket {
        try NetworkNamespace.within(netnsPath) { () throws(RuntimeError) -> RouteSocket in
            do { return try RouteSocket() } catch { throw .failed(step: "\(step): open rtnetlink socket", reason: "\(error)") }
        }
    }

    /// The veth's record, its interface and its routes, read through `socket`.
    static func describe(_ socket: RouteSocket, netnsPath: String, logger: Logger?)
        throws(RuntimeError) -> (link: LinkRecord, interface: NetworkInterface, routes: [NetworkRoute])? {
        let step = "scan network \(netnsPath)"
        let links: [LinkRecord], addresses: [AddressRecord], routes: [RouteRecord]
        do {
            links = try socket.links()
            addresses = try socket.addresses()
            routes = try socket.routes()
        } catch {
            throw .failed(step: step, reason: "\(error)")
        }
        let candidates = links.filter { !$0.isLoopback && $0.kind != "tun" }.sorted { $0.index < $1.index }
        guard let link = candidates.first else { return nil }
        if candidates.count > 1 {
            logger?.warning("\(step): \(candidates.count) interfaces (\(candidates.map(\.name).joined(separator: ", "))); the sandbox uses only \(link.name)")
        }
        let interface = NetworkInterface(
            name: link.name, mac: AddressText.mac(link.mac), mtu: link.mtu,
            addresses: addresses.filter { $0.index == link.index && !AddressText.isIPv6LinkLocal($0.bytes) }
                .map { "\(AddressText.ip($0.bytes))/\($0.prefix)" })
        let table = routes.filter { route in
            route.outputIndex == link.index && !(route.destination.map(AddressText.isIPv6LinkLocal) ?? false)
        }.map { route in
            // An IPv4 default route is "", an IPv6 one "::/0" (so the family stays plain).
            NetworkRoute(destination: route.destination.map { "\(AddressText.ip($0))/\(route.prefix)" } ?? (route.family == KVMRUN_AF_INET6 ? "::/0" : ""),
                         gateway: route.gateway.map(AddressText.ip) ?? "", device: link.name, scope: UInt32(route.scope))
        }
        return (link, interface, table)
    }
}
