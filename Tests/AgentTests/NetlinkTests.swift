#if canImport(Glibc)
import Glibc
#endif
import Agent
import CAgent
import Sys
import Testing

/// rtnetlink: the codec against well-formed and malformed bytes, and the real calls in a fresh
/// network namespace on this host (a thread of its own unshares it, so the test process's
/// other threads keep theirs).
@Suite("Netlink", .serialized)
struct NetlinkTests {
    @Test func encodeParseRoundTrip() throws {
        let message = NetlinkMessage(type: 20, flags: 5, sequence: 9, header: [2, 24, 0, 0, 1, 0, 0, 0],
                                     attributes: [(2, [10, 0, 0, 1]), (3, Array("eth0".utf8) + [0])])
        let bytes = message.encoded()
        #expect(bytes.count % 4 == 0)
        #expect(try NetlinkMessage.parse(bytes + bytes, headerSize: { _ in 8 }) == [message, message])
    }

    @Test func malformedAnswersAreRejected() throws {
        let good = NetlinkMessage(type: 20, flags: 0, header: [2, 24, 0, 0, 1, 0, 0, 0], attributes: [(2, [10, 0, 0, 1])]).encoded()
        var long = good
        long[0] = 200   // message length past the datagram
        #expect(throws: NetlinkError.self) { _ = try NetlinkMessage.parse(long, headerSize: { _ in 8 }) }
        var shortHeader = good
        shortHeader[0] = 20   // 4 bytes of body for an 8-byte header
        #expect(throws: NetlinkError.self) { _ = try NetlinkMessage.parse(Array(shortHeader.prefix(20)), headerSize: { _ in 8 }) }
        var badAttribute = good
        badAttribute[24] = 60   // attribute length past its message
        #expect(throws: NetlinkError.self) { _ = try NetlinkMessage.parse(badAttribute, headerSize: { _ in 8 }) }
        badAttribute[24] = 2    // attribute length below its own header
        #expect(throws: NetlinkError.self) { _ = try NetlinkMessage.parse(badAttribute, headerSize: { _ in 8 }) }
        #expect(try NetlinkMessage.parse([1, 2, 3], headerSize: { _ in 8 }).isEmpty)
    }

    @Test func addresses() {
        #expect(IPv4.parse("10.0.2.15") == [10, 0, 2, 15])
        #expect(IPv4.parse("256.1.1.1") == nil && IPv4.parse("1.2.3") == nil && IPv4.parse("1..2.3") == nil)
        #expect(IPv4.parseCIDR("172.16.0.0/12").map { $0.address == [172, 16, 0, 0] && $0.prefix == 12 } == true)
        #expect(IPv4.parseCIDR("1.2.3.4/33") == nil)
        #expect(IPv4.prefixLength(mask: "255.255.255.0") == 24)
        #expect(IPv4.prefixLength(mask: "24") == 24)
        #expect(IPv4.prefixLength(mask: "0.0.0.0") == 0)
        #expect(IPv4.prefixLength(mask: "255.0.255.0") == nil)
    }

    /// Runs `body` on a new thread inside a new network namespace (only that thread's).
    static func inNewNetworkNamespace(_ body: @escaping @Sendable () throws -> Void) throws {
        final class Outcome: @unchecked Sendable { var error: (any Error)?; var done = false }
        let outcome = Outcome()
        let parking = Parking()
        try startThread("netns test") {
            var failure: (any Error)?
            if kvmrun_unshare(Int32(KVMRUN_CLONE_NEWNET)) != 0 {
                failure = SystemError(call: "unshare(CLONE_NEWNET)", errno: errno)
            } else {
                do { try body() } catch { failure = error }
            }
            parking.withLock { _ in
                outcome.error = failure
                outcome.done = true
            }
            parking.wakeAll()
        }
        parking.withLock { wait in while !outcome.done { wait() } }
        if let error = outcome.error { throw error }
    }

    @Test(.enabled(if: AgentTest.isRoot)) func interfacesAndRoutesInANamespace() throws {
        try Self.inNewNetworkNamespace {
            let before = try Network.interfaces()
            #expect(before.map(\.name) == ["lo"])
            #expect((before.first?.flags ?? 1) & 1 == 0, "lo starts down")
            let updated = try Network.update(Network.Interface(name: "lo", hardwareAddress: "", mtu: 9000,
                                                               addresses: [("10.77.0.1", 24), ("10.78.0.1", 16)]), device: "lo")
            #expect(updated.mtu == 9000)
            #expect(updated.flags & 1 == 1, "up")
            #expect(updated.addresses.map(\.address).filter { $0 != "127.0.0.1" } == ["10.77.0.1", "10.78.0.1"], "(the kernel adds 127.0.0.1 to lo)")
            // Replacing addresses removes the old ones.
            let again = try Network.update(Network.Interface(name: "lo", hardwareAddress: "", mtu: 0, addresses: [("10.79.0.1", 8)]), device: "lo")
            #expect(again.addresses.map(\.address) == ["10.79.0.1"], "old addresses, 127.0.0.1 included, are replaced")
            let routes = try Network.replaceRoutes([
                Network.Route(destination: "10.80.0.0/16", device: "lo"),
                Network.Route(destination: "", gateway: "10.79.0.254", device: "lo"),
            ])
            #expect(routes.contains(Network.Route(destination: "10.80.0.0/16", device: "lo", scope: 253)))
            #expect(routes.contains { $0.destination.isEmpty && $0.gateway == "10.79.0.254" && $0.device == "lo" })
            // Replacing routes drops those not asked for.
            let fewer = try Network.replaceRoutes([Network.Route(destination: "10.81.0.0/16", device: "lo")])
            #expect(!fewer.contains { $0.destination == "10.80.0.0/16" || $0.destination.isEmpty })
            #expect(fewer.contains { $0.destination == "10.81.0.0/16" })
            #expect(throws: AgentError.self) { _ = try Network.replaceRoutes([Network.Route(destination: "10.9.0.0/16", device: "nope0")]) }
            #expect(throws: AgentError.self) {
                _ = try Network.update(Network.Interface(name: "eth9", hardwareAddress: "02:00:00:00:00:09", mtu: 0, addresses: []), device: "")
            }
        }
    }
}
