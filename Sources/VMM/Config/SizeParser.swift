/// Parses sizes as the CLI takes them: a number with an optional binary suffix
/// (K, M, G, T, optionally followed by "iB" or "B"; case-insensitive). A bare number means MiB,
/// as in Firecracker's mem_size_mib.
public enum SizeParser {
    public enum Error: Swift.Error, CustomStringConvertible, Equatable {
        case invalid(String)
        case overflow(String)

        public var description: String {
            switch self {
            case let .invalid(text): return "'\(text)' is not a size (examples: 128M, 1G, 512MiB; a bare number means MiB)"
            case let .overflow(text): return "size '\(text)' is too large"
            }
        }
    }

    public static func parse(_ text: String) throws(Error) -> UInt64 {
        let trimmed = text.trimmingSpaces
        var digits = Substring(trimmed)
        var suffix = ""
        while let last = digits.last, !last.isNumber {
            suffix = String(last) + suffix
            digits = digits.dropLast()
        }
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }), let number = UInt64(digits) else {
            throw .invalid(text)
        }
        let shift: UInt64
        switch suffix.lowercased() {
        case "": shift = 20
        case "k", "kb", "kib": shift = 10
        case "m", "mb", "mib": shift = 20
        case "g", "gb", "gib": shift = 30
        case "t", "tb", "tib": shift = 40
        case "b": shift = 0
        default: throw .invalid(text)
        }
        let (result, overflow) = number.multipliedReportingOverflow(by: 1 << shift)
        guard !overflow else { throw .overflow(text) }
        return result
    }

    /// "128 MiB", "1.5 GiB"-style rendering for messages.
    public static func format(_ bytes: UInt64) -> String {
        if bytes >= 1 << 30 && bytes % (1 << 30) == 0 { return "\(bytes >> 30) GiB" }
        if bytes >= 1 << 20 && bytes % (1 << 20) == 0 { return "\(bytes >> 20) MiB" }
        if bytes >= 1 << 10 && bytes % (1 << 10) == 0 { return "\(bytes >> 10) KiB" }
        return "\(bytes) bytes"
    }
}

extension String {
    var trimmingSpaces: String {
        String(self.drop(while: { $0 == " " }).reversed().drop(while: { $0 == " " }).reversed())
    }
}
