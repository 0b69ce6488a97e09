// A NETLINK_ROUTE socket and its request/answer exchange. The socket belongs to the network
// namespace it was opened in (see NetworkNamespace.within), whichever thread uses it later.
#if canImport(Glibc)
import Glibc
#endif
import CNetlink
import Sys

final class RouteSocket {
    private let file: FileDescriptor
    private var sequence: UInt32 = 1

    /// Opens the socket in the calling thread's current network namespace.
    init() throws(SystemError) {
        file = FileDescriptor(try sys("socket(AF_NETLINK, NETLINK_ROUTE)") { kvmrun_netlink_open() })
    }

    /// Sends one request and reads answers until its dump ends or its acknowledgement comes.
    /// `what` names the request in errors ("RTM_NEWQDISC ingress on eth0").
    @discardableResult
    func exchange(type: UInt16, flags: UInt16, header: [UInt8], attributes: [RouteAttribute] = [],
                  what: String) throws(NetlinkFailure) -> [RouteMessage] {
        let number = sequence
        sequence &+= 1
        let bytes = RouteMessage.request(type: type, flags: KVMRUN_NLM_F_REQUEST | flags, sequence: number, header: header,
                                         attributes: attributes)
        // SAFETY: sends the local array's bytes, count from the same array.
        let sent = bytes.withUnsafeBytes { Glibc.send(file.raw, $0.baseAddress, $0.count, 0) }
        guard sent == bytes.count else { throw NetlinkFailure(request: "send \(what)", errno: sent < 0 ? errno : EIO, kernelText: "") }
        var answers: [RouteMessage] = []
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            // SAFETY: receives into the local buffer, at most its size.
            let count = buffer.withUnsafeMutableBytes { recv(file.raw, $0.baseAddress, $0.count, 0) }
            guard count > 0 else {
                if count < 0, errno == EINTR { continue }
                throw NetlinkFailure(request: "recv \(what)", errno: count < 0 ? errno : EIO, kernelText: "")
            }
            for answer in try RouteMessage.parse(Array(buffer[0..<count])) where answer.sequence == number {
                switch answer.type {
                case KVMRUN_NLMSG_DONE: return answers
                case KVMRUN_NLMSG_ERROR:
                    let code = Int32(bitPattern: RouteMessage.field32(answer.header, 0))
                    if code == 0 { return answers }   // the acknowledgement
                    throw NetlinkFailure(request: what, errno: -code, kernelText: Self.kernelText(answer))
                default: answers.append(answer)
                }
            }
        }
    }

    /// The NLMSGERR_ATTR_MSG text of an extended acknowledgement, "" when there is none. The
    /// body is the errno, the request's header (or whole request when not capped), then TLVs.
    static func kernelText(_ error: RouteMessage) -> String {
        guard error.flags & KVMRUN_NLM_F_ACK_TLVS != 0, error.header.count >= 20 else { return "" }
        let capped = error.flags & KVMRUN_NLM_F_CAPPED != 0
        let embedded = capped ? 16 : Int(RouteMessage.le32(error.header, 4))
        let start = 4 + RouteMessage.align(embedded)
        guard start <= error.header.count, let tlvs = try? RouteMessage.attributes(error.header, from: start),
              let text = tlvs.first(where: { $0.type == KVMRUN_NLMSGERR_ATTR_MSG }) else { return "" }
        return RouteMessage.string(text.value)
    }
}
