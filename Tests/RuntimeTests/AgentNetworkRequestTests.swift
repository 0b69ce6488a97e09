// The agent requests a sandbox network turns into: the fields the guest agent's
// NetworkService reads (Sources/Agent/RPC/NetworkService.swift).
import AgentProtocol
import FoundationEssentials
import Runtime
import Testing

@Suite("Sandbox network: agent requests")
struct AgentNetworkRequestTests {
    let network = SandboxNetwork(
        netnsPath: "/run/netns/x",
        interface: NetworkInterface(name: "eth0", mac: "6a:1b:2c:3d:4e:5f", mtu: 1400, addresses: ["10.88.0.5/16", "fd00::5/64"]),
        routes: [
            NetworkRoute(destination: "", gateway: "10.88.0.1", device: "eth0", scope: 0),
            NetworkRoute(destination: "10.88.0.0/16", gateway: "", device: "eth0", scope: 253),
            NetworkRoute(destination: "fd00::/64", gateway: "", device: "eth0", scope: 0),
            NetworkRoute(destination: "192.168.0.0/24", gateway: "", device: "other0", scope: 253),
        ],
        tapName: "tap0_kvmrun")

    @Test("UpdateInterface: the guest name, the veth's MAC and MTU, each address with its family and prefix")
    func interfaceRequest() {
        let interface = network.agentInterfaceRequest(guestName: "eth0").interface
        #expect(interface.name == "eth0")
        #expect(interface.device == "eth0")
        #expect(interface.hwAddr == "6a:1b:2c:3d:4e:5f")
        #expect(interface.mtu == 1400)
        #expect(interface.ipAddresses.map(\.family) == [.v4, .v6])
        #expect(interface.ipAddresses.map(\.address) == ["10.88.0.5", "fd00::5"])
        #expect(interface.ipAddresses.map(\.mask) == ["16", "64"])
        #expect(network.agentInterfaceRequest(guestName: "net1").interface.name == "net1")
    }

    @Test("UpdateRoutes: the veth's routes on the guest interface, link routes before gateway routes")
    func routesRequest() {
        let routes = network.agentRoutesRequest(guestName: "eth1").routes.routes
        #expect(routes.map(\.dest) == ["10.88.0.0/16", "fd00::/64", ""])
        #expect(routes.map(\.gateway) == ["", "", "10.88.0.1"])
        #expect(routes.allSatisfy { $0.device == "eth1" })
        #expect(routes.map(\.scope) == [253, 0, 0])
        #expect(routes.map(\.family) == [.v4, .v6, .v4])
    }

    @Test("The network round-trips through JSON (it is kept in the sandbox state)")
    func codable() throws {
        let encoded = try JSONEncoder().encode(network)
        #expect(try JSONDecoder().decode(SandboxNetwork.self, from: encoded) == network)
    }
}
