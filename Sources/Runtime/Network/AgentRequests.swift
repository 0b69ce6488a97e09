// The agent calls that give the guest the veth's identity: UpdateInterface (the guest link is
// found by the MAC the VMM gave it, renamed, MTU and addresses set, brought up) and
// UpdateRoutes (the main table replaced). The agent reads them in
// Sources/Agent/RPC/NetworkService.swift: masks as prefix lengths, family per address and
// route (it applies IPv4 only today; IPv6 entries are sent for a guest that can take them).
import AgentProtocol

extension SandboxNetwork {
    public func agentInterfaceRequest(guestName: String) -> Grpc_UpdateInterfaceRequest {
        var message = Types_Interface()
        message.device = guestName
        message.name = guestName
        message.hwAddr = interface.mac
        message.mtu = UInt64(interface.mtu)
        message.ipAddresses = interface.addresses.compactMap { text in
            let parts = text.split(separator: "/", maxSplits: 1)
            guard let address = parts.first else { return nil }
            var entry = Types_IPAddress()
            entry.family = address.contains(":") ? .v6 : .v4
            entry.address = String(address)
            entry.mask = parts.count == 2 ? String(parts[1]) : (entry.family == .v6 ? "128" : "32")
            return entry
        }
        var request = Grpc_UpdateInterfaceRequest()
        request.interface = message
        return request
    }

    /// The routes through the veth, on the guest's interface `guestName`; link routes first,
    /// so the gateways of the others are reachable when the agent adds them in order.
    public func agentRoutesRequest(guestName: String) -> Grpc_UpdateRoutesRequest {
        let through = routes.filter { $0.device == interface.name }
        let ordered = through.filter { $0.gateway.isEmpty } + through.filter { !$0.gateway.isEmpty }
        var list = Grpc_Routes()
        list.routes = ordered.map { route in
            var message = Types_Route()
            message.dest = route.destination
            message.gateway = route.gateway
            message.device = guestName
            message.scope = route.scope
            message.family = route.destination.contains(":") || route.gateway.contains(":") ? .v6 : .v4
            return message
        }
        var request = Grpc_UpdateRoutesRequest()
        request.routes = list
        return request
    }
}
