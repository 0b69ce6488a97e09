// The host's rtnetlink codec without sockets: the tc filter request against the bytes tc(8)
// sends for the same filter (captured with strace), malformed answers, extended-ack text.
@testable import Runtime
import Testing

private func hex(_ text: String) -> [UInt8] { text.split(separator: " ").map { UInt8($0, radix: 16)! } }

@Suite("rtnetlink messages (host)")
struct RouteMessageTests {
    @Test("the u32 mirred redirect is byte for byte what `tc filter add dev A ingress prio 1 protocol all u32 match u32 0 0 action mirred egress redirect dev B` sends")
    func redirectMatchesTc() {
        // strace -xx of tc 6.1 with B at index 2: RTM_NEWTFILTER, REQUEST|ACK|EXCL|CREATE, tcmsg
        // {ifindex A, handle 0, parent 0xfffffff2, info 0x10300}, TCA_KIND "u32", TCA_OPTIONS.
        let options = hex("""
            38 00 07 00 34 00 01 00 0b 00 01 00 6d 69 72 72 65 64 00 00 24 00 02 80 20 00 02 00 00 00 00 00 00 00 00 00 \
            04 00 00 00 00 00 00 00 00 00 00 00 01 00 00 00 02 00 00 00 24 00 05 00 01 00 01 00 00 00 00 00 00 00 00 00 \
            00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
            """)
        let tcBody = hex("00 00 00 00 03 00 00 00 00 00 00 00 f2 ff ff ff 00 03 01 00")
            + hex("08 00 01 00 75 33 32 00") + hex("60 00 02 00") + options
        let ours = RouteMessage.request(type: 44, flags: 0x0605, sequence: 7, header: RouteSocket.redirectHeader(from: 3),
                                        attributes: RouteSocket.redirectAttributes(to: 2))
        #expect(ours.count == 140)
        #expect(Array(ours[16...]) == tcBody)
        #expect(Array(ours[0..<16]) == hex("8c 00 00 00 2c 00 05 06 07 00 00 00 00 00 00 00"))
    }

    @Test("answers with lengths that do not fit are refused, not read past")
    func malformed() {
        let tooLong = hex("ff 00 00 00 10 00 00 00 01 00 00 00 00 00 00 00")
        #expect(throws: NetlinkFailure.self) { try RouteMessage.parse(tooLong) }
        // RTM_NEWLINK claiming 20 bytes: shorter than its 16-byte ifinfomsg header.
        let shortHeader = hex("14 00 00 00 10 00 00 00 01 00 00 00 00 00 00 00 00 00 00 00")
        #expect(throws: NetlinkFailure.self) { try RouteMessage.parse(shortHeader) }
        // An attribute whose length runs past the message.
        let badAttribute = hex("24 00 00 00 10 00 00 00 01 00 00 00 00 00 00 00") + [UInt8](repeating: 0, count: 16) + hex("40 00 03 00")
        #expect(throws: NetlinkFailure.self) { try RouteMessage.parse(badAttribute) }
    }

    @Test("an extended acknowledgement's text reaches the error")
    func extendedAck() throws {
        // NLMSG_ERROR, flags CAPPED|ACK_TLVS: errno -17, the request's 16-byte header, then
        // NLMSGERR_ATTR_MSG "Exclusivity flag on".
        let text = Array("Exclusivity flag on".utf8) + [0]
        let body = hex("ef ff ff ff") + hex("30 00 00 00 24 00 05 06 01 00 00 00 00 00 00 00")
            + RouteMessage.le16(UInt16(4 + text.count)) + RouteMessage.le16(1) + text
        var bytes = RouteMessage.le32(UInt32(16 + body.count)) + hex("02 00 00 03 01 00 00 00 00 00 00 00") + body
        while bytes.count % 4 != 0 { bytes.append(0) }
        let messages = try RouteMessage.parse(bytes)
        #expect(messages.count == 1)
        #expect(RouteSocket.kernelText(messages[0]) == "Exclusivity flag on")
        let failure = NetlinkFailure(request: "RTM_NEWQDISC ingress eth0", errno: 17, kernelText: RouteSocket.kernelText(messages[0]))
        #expect(failure.description == "RTM_NEWQDISC ingress eth0: EEXIST (File exists): Exclusivity flag on")
    }
}
