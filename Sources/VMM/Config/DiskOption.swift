/// `--disk path=FILE[,readonly=on|off][,id=NAME]`. (Owned by the virtio-blk work.)
public struct DiskOption: Equatable, Sendable {
    public var path: String
    public var readOnly: Bool
    public var id: String

    public init(path: String, readOnly: Bool = false, id: String) {
        self.path = path
        self.readOnly = readOnly
        self.id = id
    }

    /// Parses the option text; `index` names the disk when no id is given ("disk0").
    public static func parse(_ text: String, index: Int) throws(VMMError) -> DiskOption {
        throw .config("--disk is not implemented yet")
    }
}
