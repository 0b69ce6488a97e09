// Placeholder until feat/rt-net lands (the lead's tree only): the shape the records store.
public struct NetworkInterface: Codable, Sendable, Equatable { public var name: String; public var mac: String; public var mtu: UInt32; public var addresses: [String] }
public struct NetworkRoute: Codable, Sendable, Equatable { public var destination: String; public var gateway: String; public var device: String; public var scope: UInt32 }
public struct SandboxNetwork: Codable, Sendable, Equatable {
    public var netnsPath: String
    public var interface: NetworkInterface
    public var routes: [NetworkRoute]
    public var tapName: String
}
