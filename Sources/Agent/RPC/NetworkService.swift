// The network calls of grpc.AgentService: Kata's Interface and Route messages to and from the
// agent's rtnetlink helpers.
import AgentProtocol
import AgentServer

extension AgentService {
    func registerNetwork(on server: TTRPCServer) {
        server.register(AgentRPC.listInterfaces) { _, _ in
            var response = Grpc_Interfaces()
            response.interfaces = try Network.interfaces().map(Self.message)
            return response
        }
        server.register(AgentRPC.updateInterface) { request, _ in
            let proto = request.interface
            var addresses: [(address: String, prefix: UInt8)] = []
            for address in proto.ipAddresses where address.family == .v4 {
                guard let prefix = IPv4.prefixLength(mask: address.mask.isEmpty ? "32" : address.mask) else {
                    throw AgentError.invalid("UpdateInterface: mask \"\(address.mask)\" of \(address.address) is neither a prefix length nor a netmask")
                }
                addresses.append((address.address, prefix))
            }
            let wanted = Network.Interface(name: proto.name, hardwareAddress: proto.hwAddr, mtu: proto.mtu, addresses: addresses)
            return Self.message(try Network.update(wanted, device: proto.device))
        }
        server.register(AgentRPC.listRoutes) { _, _ in
            var response = Grpc_Routes()
            response.routes = try Network.routes().map(Self.message)
            return response
        }
        server.register(AgentRPC.updateRoutes) { request, _ in
            let wanted = request.routes.routes.filter { $0.family == .v4 }.map { route in
                Network.Route(destination: route.dest, gateway: route.gateway, device: route.device, source: route.source,
                              scope: UInt8(clamping: route.scope), flags: route.flags, mtu: route.mtu)
            }
            var response = Grpc_Routes()
            response.routes = try Network.replaceRoutes(wanted).map(Self.message)
            return response
        }
    }

    static func message(_ interface: Network.Interface) -> Types_Interface {
        var message = Types_Interface()
        message.device = interface.name
        message.name = interface.name
        message.hwAddr = interface.hardwareAddress
        message.mtu = interface.mtu
        message.rawFlags = interface.flags
        message.type = interface.kind
        message.ipAddresses = interface.addresses.map { entry in
            var address = Types_IPAddress()
            address.family = .v4
            address.address = entry.address
            address.mask = String(entry.prefix)
            return address
        }
        return message
    }

    static func message(_ route: Network.Route) -> Types_Route {
        var message = Types_Route()
        message.dest = route.destination
        message.gateway = route.gateway
        message.device = route.device
        message.source = route.source
        message.scope = UInt32(route.scope)
        message.family = .v4
        message.flags = route.flags
        message.mtu = route.mtu
        return message
    }
}
