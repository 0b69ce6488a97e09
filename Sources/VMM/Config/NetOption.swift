/// `--net tap=NAME[,mac=XX:XX:XX:XX:XX:XX]`. (Owned by the virtio-net work.)
public struct NetOption: Equatable, Sendable {
    public var tap: String
    public var mac: [UInt8]?

    public init(tap: String, mac: [UInt8]? = nil) {
        self.tap = tap
        self.mac = mac
    }

    public static func parse(_ text: String, index: Int) throws(VMMError) -> NetOption {
        throw .config("--net is not implemented yet")
    }
}
