#if canImport(Glibc)
import Glibc
#endif
import AgentClient
import AgentHost
import AgentProtocol
import Testing

/// The agent's network calls in a microVM with a virtio-net device on a TAP of the nested host:
/// ListInterfaces finds the guest's NIC by its MAC, UpdateInterface gives it an address and an
/// MTU, UpdateRoutes a default route, and a container (sharing the guest's network namespace)
/// pings the host across the TAP.
@Suite("Agent network calls in a microVM", .serialized, .enabled(if: E2E.bootsEnabled && AgentVM.firmwareBuilt && getuid() == 0))
struct AgentNetworkE2ETests {
    static let tap = "kvmagent0"
    static let mac = "52:54:00:12:34:99"

    @Test("UpdateInterface, UpdateRoutes, ListInterfaces, ListRoutes; a container reaches the host")
    func interfacesAndRoutes() throws {
        try Net.ip("tuntap add dev \(Self.tap) mode tap")
        defer { _ = try? Net.command(Net.ipTool, ["tuntap", "del", "dev", Self.tap, "mode", "tap"]) }
        try Net.ip("addr add 10.0.9.1/24 dev \(Self.tap)")
        try Net.ip("link set \(Self.tap) up")
        let vm = try AgentVM(name: "agent-net", extra: ["--net", "tap=\(Self.tap),mac=\(Self.mac)"])
        let agent = vm.driver

        let before = try agent.client.listInterfaces().interfaces
        let nic = before.first { $0.hwAddr == Self.mac }
        #expect(nic?.name == "eth0", "interfaces: \(before.map { "\($0.name) \($0.hwAddr)" })")
        #expect(before.contains { $0.name == "lo" && $0.ipAddresses.contains { $0.address == "127.0.0.1" } })

        var wanted = Types_Interface()
        wanted.name = "eth0"
        wanted.hwAddr = Self.mac
        wanted.mtu = 1400
        var address = Types_IPAddress()
        address.family = .v4
        address.address = "10.0.9.2"
        address.mask = "24"
        wanted.ipAddresses = [address]
        let updated = try agent.client.updateInterface(.with { $0.interface = wanted })
        #expect(updated.mtu == 1400)
        #expect(updated.ipAddresses.map(\.address) == ["10.0.9.2"])
        #expect(updated.rawFlags & 1 == 1, "eth0 is up")

        var route = Types_Route()
        route.dest = ""
        route.gateway = "10.0.9.1"
        route.device = "eth0"
        let routes = try agent.client.updateRoutes(.with { $0.routes.routes = [route] }).routes
        #expect(routes.contains { $0.dest.isEmpty && $0.gateway == "10.0.9.1" && $0.device == "eth0" }, "\(routes)")
        #expect(try agent.client.listRoutes().routes.contains { $0.dest == "10.0.9.0/24" && $0.device == "eth0" })

        try vm.createContainer("pinger", ["ping", "-c", "1", "-W", "10", "10.0.9.1"])
        try agent.start("pinger")
        let output = try agent.readAll("pinger")
        #expect(try agent.wait("pinger") == 0, "ping output: \(output)")
        #expect(vm.destroy() == 0)
    }
}
