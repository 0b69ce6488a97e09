/// `--vsock cid=N,uds=PATH`. (Owned by the virtio-vsock work.)
public struct VsockOption: Equatable, Sendable {
    public var cid: UInt64
    public var udsPath: String

    public init(cid: UInt64, udsPath: String) {
        self.cid = cid
        self.udsPath = udsPath
    }

    public static func parse(_ text: String) throws(VMMError) -> VsockOption {
        throw .config("--vsock is not implemented yet")
    }
}
