#if canImport(Glibc)
import Glibc
#endif

/// `--disk path=FILE[,readonly=on|off][,id=NAME]`: a virtio-blk drive over a raw image file.
public struct DiskOption: Equatable, Sendable {
    public static let keys = ["path", "readonly", "id"]
    /// The id is also the drive's serial (GET_ID), which holds 20 bytes.
    public static let maxIDLength = 20

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
        var values: [String: String] = [:]
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            guard let equals = item.firstIndex(of: "=") else {
                throw .config("--disk '\(text)': '\(item)' is not KEY=VALUE (keys: \(keys.joined(separator: ", ")))")
            }
            let key = String(item[..<equals])
            let value = String(item[item.index(after: equals)...])
            guard keys.contains(key) else {
                throw .config("--disk '\(text)': unknown key '\(key)' (keys: \(keys.joined(separator: ", ")))")
            }
            guard values[key] == nil else { throw .config("--disk '\(text)': '\(key)' given twice") }
            values[key] = value
        }
        guard let path = values["path"], !path.isEmpty else { throw .config("--disk '\(text)': path=FILE is missing") }
        let readOnly: Bool
        switch values["readonly"] {
        case nil, "off": readOnly = false
        case "on": readOnly = true
        case let other?: throw .config("--disk '\(text)': readonly must be on or off (got '\(other)')")
        }
        let id = values["id"] ?? "disk\(index)"
        guard isValidID(id) else {
            throw .config("--disk '\(text)': id '\(id)' must be 1-\(maxIDLength) letters, digits, '.', '_' or '-'")
        }
        return DiskOption(path: path, readOnly: readOnly, id: id)
    }

    /// Parses every `--disk` and checks that no two share an id.
    public static func parseAll(_ texts: [String]) throws(VMMError) -> [DiskOption] {
        var disks: [DiskOption] = []
        for (index, text) in texts.enumerated() { disks.append(try parse(text, index: index)) }
        try checkUniqueIDs(disks)
        return disks
    }

    /// Drive ids name drives in the control API, so they must be unique.
    public static func checkUniqueIDs(_ disks: [DiskOption]) throws(VMMError) {
        var seen: Set<String> = []
        for disk in disks where !seen.insert(disk.id).inserted {
            throw .config("--disk: two disks have the id '\(disk.id)' (ids must be unique)")
        }
    }

    static func isValidID(_ id: String) -> Bool {
        guard !id.isEmpty, id.utf8.count <= maxIDLength else { return false }
        return id.unicodeScalars.allSatisfy { scalar in
            scalar.isASCII && (scalar.properties.isAlphabetic || ("0"..."9").contains(scalar) || "._-".unicodeScalars.contains(scalar))
        }
    }

    /// Why the image cannot be opened the way the drive needs it (read-write unless read-only),
    /// or nil when it can. For a usage error before any VM exists.
    public var accessProblem: String? {
        let mode = readOnly ? R_OK : R_OK | W_OK
        guard access(path, mode) != 0 else {
            var info = stat()
            guard stat(path, &info) == 0 else { return nil }
            let type = info.st_mode & S_IFMT
            return type == S_IFREG || type == S_IFBLK ? nil : "--disk id=\(id): \(path): not a regular file or block device"
        }
        let code = errno
        let reason = switch code {
        case ENOENT: "no such file"
        case EACCES: "permission denied (\(readOnly ? "read" : "read-write"))"
        case EROFS: "on a read-only file system (use readonly=on)"
        default: "cannot be opened (errno \(code))"
        }
        return "--disk id=\(id): \(path): \(reason)"
    }
}
