/// `--vsock cid=N,uds=PATH`: the guest's CID and the Unix socket of the hybrid vsock host side.
public struct VsockOption: Equatable, Sendable {
    /// CIDs 0-2 are reserved (hypervisor, local, host); 0xFFFFFFFF is VMADDR_CID_ANY.
    public static let cidRange: ClosedRange<UInt64> = 3...0xFFFF_FFFE
    /// sockaddr_un.sun_path holds 108 bytes with the terminating zero; `<uds>_<port>` must fit too.
    public static let maxPathBytes = 107 - 11

    public var cid: UInt64
    public var udsPath: String

    public init(cid: UInt64, udsPath: String) {
        self.cid = cid
        self.udsPath = udsPath
    }

    public static func parse(_ text: String) throws(VMMError) -> VsockOption {
        var cid: UInt64?
        var uds: String?
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            guard let equals = part.firstIndex(of: "=") else {
                throw .config("--vsock: '\(part)' is not key=value (expected cid=N,uds=PATH)")
            }
            let key = part[..<equals]
            let value = String(part[part.index(after: equals)...])
            switch key {
            case "cid":
                guard cid == nil else { throw .config("--vsock: cid given twice") }
                guard let number = UInt64(value), VsockOption.cidRange.contains(number) else {
                    throw .config("--vsock: cid '\(value)' must be a number from 3 to 4294967294 (0-2 are reserved)")
                }
                cid = number
            case "uds":
                guard uds == nil else { throw .config("--vsock: uds given twice") }
                guard !value.isEmpty else { throw .config("--vsock: uds is empty (expected a Unix socket path)") }
                guard value.utf8.count <= VsockOption.maxPathBytes else {
                    throw .config("--vsock: uds path is \(value.utf8.count) bytes, more than the \(VsockOption.maxPathBytes) a Unix socket path (with _PORT) allows")
                }
                uds = value
            default:
                throw .config("--vsock: unknown key '\(key)' (expected cid=N,uds=PATH)")
            }
        }
        guard let cid else { throw .config("--vsock: cid=N is missing") }
        guard let uds else { throw .config("--vsock: uds=PATH is missing") }
        return VsockOption(cid: cid, udsPath: uds)
    }
}
