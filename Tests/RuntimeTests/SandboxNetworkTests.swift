// The sandbox network on this host, against real namespaces, a real veth and TAP, and the
// kernel's tc: scan, attach (TAP and both redirects, checked with tc(8) and a netlink dump),
// frames crossing the redirects both ways, detach, rollback of failed attaches.
#if canImport(Glibc)
import Glibc
#endif
@testable import Runtime
import Sys
import Testing

@Suite("Sandbox network (netns, veth, TAP, tc mirred)", .serialized)
struct SandboxNetworkTests {
    static let tap = "tap0_kvmrun"

    @Test("scan reads the veth's name, MAC, MTU, addresses and routes, leaving out lo and link-local IPv6")
    func scanReadsTheVeth() throws {
        let fixture = try NetnsFixture("scan")
        defer { fixture.remove() }
        let found = try #require(try SandboxNetwork.scan(netnsPath: fixture.sandboxPath))
        #expect(found.interface == NetworkInterface(name: "eth0", mac: try fixture.mac("eth0", in: fixture.sandbox), mtu: 1400,
                                                    addresses: ["10.88.0.5/16", "fd00::5/64"]))
        #expect(found.routes.contains(NetworkRoute(destination: "", gateway: "10.88.0.1", device: "eth0", scope: 0)))
        #expect(found.routes.contains(NetworkRoute(destination: "10.88.0.0/16", gateway: "", device: "eth0", scope: 253)))
        #expect(found.routes.contains(NetworkRoute(destination: "fd00::/64", gateway: "", device: "eth0", scope: 0)))
        #expect(found.routes.count == 3, "no fe80::/64, no local-table routes: \(found.routes)")
        // By /proc/PID/ns/net too: a process living in the namespace.
        let sleeper = try ChildSleeper(namespace: fixture.sandbox)
        defer { sleeper.stop() }
        let viaPID = try #require(try SandboxNetwork.scan(netnsPath: "/proc/\(sleeper.pid)/ns/net"))
        #expect(viaPID.interface == found.interface)
    }

    @Test("scan of a namespace with only lo is nil")
    func scanLoopbackOnly() throws {
        let fixture = try NetnsFixture("lo", withVeth: false)
        defer { fixture.remove() }
        #expect(try SandboxNetwork.scan(netnsPath: fixture.sandboxPath) == nil)
    }

    @Test("attach makes a persistent vnet-header TAP with the veth's MTU and mirred redirects both ways; detach removes them, twice")
    func attachAndDetach() throws {
        let fixture = try NetnsFixture("attach")
        defer { fixture.remove() }
        let network = try SandboxNetwork.attach(netnsPath: fixture.sandboxPath, tapName: Self.tap)
        #expect(network.interface.name == "eth0")
        #expect(network.tapName == Self.tap)
        let link = try ip("-n", fixture.sandbox, "-d", "link", "show", Self.tap)
        for word in ["mtu 1400", "tun type tap", "pi off", "vnet_hdr on", "persist on", ",UP"] {
            #expect(link.contains(word), "\(word) in \(link)")
        }
        let vethFilters = try tc("-n", fixture.sandbox, "-s", "filter", "show", "dev", "eth0", "ingress")
        #expect(vethFilters.contains("mirred (Egress Redirect to device \(Self.tap))"), "\(vethFilters)")
        let tapFilters = try tc("-n", fixture.sandbox, "-s", "filter", "show", "dev", Self.tap, "ingress")
        #expect(tapFilters.contains("mirred (Egress Redirect to device eth0)"), "\(tapFilters)")
        // The same through our own dump.
        let socket = try SandboxNetwork.openSocket(in: fixture.sandboxPath, step: "test")
        let eth0 = try #require(try socket.link(named: "eth0")), tap = try #require(try socket.link(named: Self.tap))
        #expect(try socket.ingressFilters(index: eth0.index).contains { $0.redirectTo == tap.index && $0.egressRedirect })
        #expect(try socket.ingressFilters(index: tap.index).contains { $0.redirectTo == eth0.index && $0.egressRedirect })

        #expect(network.detach() == [])
        #expect(try socket.link(named: Self.tap) == nil)
        #expect(try !socket.hasIngressQdisc(index: eth0.index))
        #expect(try !tc("-n", fixture.sandbox, "qdisc", "show", "dev", "eth0").contains("ingress"))
        #expect(network.detach() == [], "a second detach finds nothing to do")
        fixture.remove()
        #expect(network.detach() == [], "nor does one after the namespace is gone")
    }

    @Test("frames cross the redirects: the peer's ARP reaches the TAP; an ARP written to the TAP is answered back onto it")
    func framesCrossTheRedirects() throws {
        let fixture = try NetnsFixture("frames")
        defer { fixture.remove() }
        let network = try SandboxNetwork.attach(netnsPath: fixture.sandboxPath, tapName: Self.tap)
        defer { _ = network.detach() }
        let tap = try NetworkNamespace.within(fixture.sandboxPath) { () throws(RuntimeError) -> FileDescriptor in
            do { return try TapDevice.open(name: Self.tap) } catch { throw .failed(step: "open tap", reason: "\(error)") }
        }
        let peerMAC = try Frames.parseMAC(try fixture.mac("vpeer", in: fixture.peer))
        let guestMAC = try Frames.parseMAC(network.interface.mac)

        // Peer → veth ingress → TAP: the ARP request the peer's kernel sends before a UDP datagram
        // to the sandbox's address (the socket is made in the peer namespace and stays there).
        let udp = try NetworkNamespace.within(fixture.peerPath) { () throws(RuntimeError) -> FileDescriptor in
            FileDescriptor(socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0))
        }
        try Frames.sendUDP(on: udp.raw, to: [10, 88, 0, 5], port: 9)
        let request = Frames.readARP(from: tap.raw, timeoutMilliseconds: 3000) { $0.operation == 1 && $0.targetIP == [10, 88, 0, 5] }
        #expect(request?.senderMAC == peerMAC, "the peer's ARP request arrives on the TAP")
        #expect(request?.senderIP == [10, 88, 0, 1])

        // TAP → tap ingress → veth → peer, and the peer's answer back through the veth to the TAP.
        try Frames.write(Frames.arpRequest(from: guestMAC, ip: [10, 88, 0, 5], asking: [10, 88, 0, 1]), to: tap.raw)
        let reply = Frames.readARP(from: tap.raw, timeoutMilliseconds: 3000) { $0.operation == 2 && $0.senderIP == [10, 88, 0, 1] }
        #expect(reply?.senderMAC == peerMAC, "the peer answered the ARP the TAP sent")
        #expect(reply?.targetMAC == guestMAC)
    }

    @Test("attach to a missing namespace names the step and leaves nothing")
    func attachBadNamespace() throws {
        let path = "/run/netns/kvmrun-net-\(getpid())-missing"
        #expect {
            _ = try SandboxNetwork.attach(netnsPath: path, tapName: Self.tap)
        } throws: { error in
            guard case let .failed(step, reason) = error as? RuntimeError else { return false }
            return step == "enter network namespace \(path)" && reason.contains("no such file")
        }
    }

    @Test("attach with a tap name over 15 bytes, or to a lo-only namespace, fails naming the step; nothing is left")
    func attachBadInput() throws {
        let fixture = try NetnsFixture("badname")
        defer { fixture.remove() }
        #expect {
            _ = try SandboxNetwork.attach(netnsPath: fixture.sandboxPath, tapName: "tap0_kvmrun_too_long")
        } throws: { error in
            guard case let .failed(step, reason) = error as? RuntimeError else { return false }
            return step.hasSuffix("create tap tap0_kvmrun_too_long") && reason.contains("longer than 15 bytes")
        }
        #expect(try !ip("-n", fixture.sandbox, "link", "show").contains("tap0"))
        #expect(try !tc("-n", fixture.sandbox, "qdisc", "show", "dev", "eth0").contains("ingress"))

        let empty = try NetnsFixture("empty", withVeth: false)
        defer { empty.remove() }
        #expect {
            _ = try SandboxNetwork.attach(netnsPath: empty.sandboxPath, tapName: Self.tap)
        } throws: { error in
            guard case let .failed(step, reason) = error as? RuntimeError else { return false }
            return step.hasSuffix("find the interface") && reason.contains("no interface but lo")
        }
        #expect(try !ip("-n", empty.sandbox, "link", "show").contains("tap0"))
    }

    @Test("attach failing half-way (an ingress qdisc already on the veth) deletes the TAP it made and keeps what was there")
    func attachRollsBack() throws {
        let fixture = try NetnsFixture("rollback")
        defer { fixture.remove() }
        try tc("-n", fixture.sandbox, "qdisc", "add", "dev", "eth0", "ingress")
        #expect {
            _ = try SandboxNetwork.attach(netnsPath: fixture.sandboxPath, tapName: Self.tap)
        } throws: { error in
            guard case let .failed(step, reason) = error as? RuntimeError else { return false }
            return step.hasSuffix("add ingress qdisc on eth0") && reason.contains("EEXIST") && !reason.contains("rollback left")
        }
        #expect(try !ip("-n", fixture.sandbox, "link", "show").contains(Self.tap), "the TAP attach created is gone")
        #expect(try tc("-n", fixture.sandbox, "qdisc", "show", "dev", "eth0").contains("ingress"), "the qdisc it found stays")

        // A TAP of that name already there: refused (EBUSY), and left alone.
        try tc("-n", fixture.sandbox, "qdisc", "del", "dev", "eth0", "ingress")
        try ip("-n", fixture.sandbox, "tuntap", "add", Self.tap, "mode", "tap")
        #expect {
            _ = try SandboxNetwork.attach(netnsPath: fixture.sandboxPath, tapName: Self.tap)
        } throws: { error in
            guard case let .failed(step, reason) = error as? RuntimeError else { return false }
            return step.hasSuffix("create tap \(Self.tap)") && reason.contains("EBUSY")
        }
        #expect(try ip("-n", fixture.sandbox, "link", "show").contains(Self.tap))
        #expect(try !tc("-n", fixture.sandbox, "qdisc", "show", "dev", "eth0").contains("ingress"))
    }
}
