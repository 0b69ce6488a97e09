// Attach and detach: the TAP beside the veth and the two tc redirects between them.
//
//   veth ingress ── u32 match-all, mirred egress redirect ──▶ tap (out to the VMM, the guest)
//   tap ingress  ── u32 match-all, mirred egress redirect ──▶ veth (out to the engine's bridge)
//
// Attach undoes its own steps when one fails; detach removes whatever of it is still there.
#if canImport(Glibc)
import Glibc
#endif
import Logging

extension SandboxNetwork {
    /// Creates the TAP and the two redirects; on any failure undoes what it did and throws an
    /// error naming the step.
    public static func attach(netnsPath: String, tapName: String, logger: Logger? = nil) throws(RuntimeError) -> SandboxNetwork {
        let prefix = "attach network \(netnsPath)"
        if let reason = AddressText.invalidInterfaceName(tapName) {
            throw .failed(step: "\(prefix): create tap \(tapName)", reason: "the name \(reason)")
        }
        let socket = try openSocket(in: netnsPath, step: prefix)
        guard let veth = try describe(socket, netnsPath: netnsPath, logger: logger) else {
            throw .failed(step: "\(prefix): find the interface", reason: "the namespace has no interface but lo")
        }
        var undo: [(what: String, run: () throws(NetlinkFailure) -> Void)] = []
        var step = "create tap \(tapName)"
        do {
            try NetworkNamespace.within(netnsPath) { () throws(RuntimeError) in
                do { try TapDevice.createPersistent(name: tapName) } catch { throw .failed(step: "\(prefix): \(step)", reason: "\(error)") }
            }
            step = "find tap \(tapName)"
            guard let tap = try socket.link(named: tapName) else { throw NetlinkFailure(request: "RTM_GETLINK \(tapName)", errno: ENODEV, kernelText: "") }
            undo.append(("delete tap \(tapName)", { () throws(NetlinkFailure) in try socket.deleteLink(index: tap.index, what: "RTM_DELLINK \(tapName)") }))
            step = "set tap \(tapName) up with MTU \(veth.link.mtu)"
            try socket.setUp(index: tap.index, mtu: veth.link.mtu, what: "RTM_NEWLINK \(tapName)")
            step = "add ingress qdisc on \(veth.link.name)"
            try socket.addIngressQdisc(index: veth.link.index, what: "RTM_NEWQDISC ingress \(veth.link.name)")
            undo.append(("delete ingress qdisc on \(veth.link.name)", { () throws(NetlinkFailure) in
                try socket.deleteIngressQdisc(index: veth.link.index, what: "RTM_DELQDISC ingress \(veth.link.name)")
            }))
            step = "add ingress qdisc on \(tapName)"
            try socket.addIngressQdisc(index: tap.index, what: "RTM_NEWQDISC ingress \(tapName)")
            step = "redirect \(veth.link.name) ingress to \(tapName)"
            try socket.addRedirect(from: veth.link.index, to: tap.index, what: "RTM_NEWTFILTER u32 mirred \(veth.link.name) → \(tapName)")
            step = "redirect \(tapName) ingress to \(veth.link.name)"
            try socket.addRedirect(from: tap.index, to: veth.link.index, what: "RTM_NEWTFILTER u32 mirred \(tapName) → \(veth.link.name)")
        } catch {
            var leftovers: [String] = []
            for entry in undo.reversed() {
                do { try entry.run() } catch { leftovers.append("\(entry.what): \(error)") }
            }
            let suffix = leftovers.isEmpty ? "" : "; rollback left: " + leftovers.joined(separator: "; ")
            if let error = error as? RuntimeError, case let .failed(failedStep, reason) = error {
                throw .failed(step: failedStep, reason: reason + suffix)
            }
            throw .failed(step: "\(prefix): \(step)", reason: "\(error)" + suffix)
        }
        return SandboxNetwork(netnsPath: netnsPath, interface: veth.interface, routes: veth.routes, tapName: tapName)
    }

    /// Removes TAP and redirects; missing pieces (the namespace itself, the TAP, the veth or its
    /// qdisc) are not errors. Returns the problems met, as sentences naming the step.
    public func detach() -> [String] {
        let prefix = "detach network \(netnsPath)"
        guard NetworkNamespace.exists(netnsPath) else { return [] }   // gone, and all in it
        let socket: RouteSocket
        do { socket = try Self.openSocket(in: netnsPath, step: prefix) } catch { return [error.description] }
        var problems: [String] = []
        do {
            let links = try socket.links()
            if let veth = links.first(where: { $0.name == interface.name }), try socket.hasIngressQdisc(index: veth.index) {
                do { try socket.deleteIngressQdisc(index: veth.index, what: "RTM_DELQDISC ingress \(veth.name)") } catch {
                    problems.append("\(prefix): delete ingress qdisc on \(veth.name): \(error)")
                }
            }
            if let tap = links.first(where: { $0.name == tapName }) {
                if tap.kind == "tun" {
                    // Its ingress qdisc and filter go with it.
                    do { try socket.deleteLink(index: tap.index, what: "RTM_DELLINK \(tapName)") } catch {
                        problems.append("\(prefix): delete tap \(tapName): \(error)")
                    }
                } else {
                    problems.append("\(prefix): \(tapName) is a \(tap.kind.isEmpty ? "non-TAP" : tap.kind) interface, not the sandbox's TAP: left in place")
                }
            }
        } catch {
            problems.append("\(prefix): \(error)")
        }
        return problems
    }
}
