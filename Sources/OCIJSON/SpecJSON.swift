// config.json to `Spec`: FoundationEssentials' JSONDecoder, with its errors turned into a
// `SpecError` that names the field, then `validate()`. A target of its own so the guest agent,
// which gets its specs as protobuf, does not link the JSON coders.
import FoundationEssentials
import OCI

extension Spec {
    /// Parses and validates an OCI runtime spec. Throws `SpecError` naming the bad field.
    public static func parse(json bytes: [UInt8]) throws(SpecError) -> Spec {
        let spec: Spec
        do {
            spec = try JSONDecoder().decode(Spec.self, from: Data(bytes))
        } catch let error as DecodingError {
            throw SpecError(decoding: error)
        } catch {
            throw SpecError(field: "", reason: "not valid JSON (\(error))")
        }
        try spec.validate()
        return spec
    }

    /// The spec as JSON (sorted keys, for files and tests).
    public func json() -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        // Encoding plain Codable structs of strings and numbers cannot fail.
        return Array((try? encoder.encode(self)) ?? Data())
    }
}

extension SpecError {
    public init(decoding error: DecodingError) {
        func path(_ codingPath: [any CodingKey], _ last: (any CodingKey)? = nil) -> String {
            var text = ""
            for key in codingPath + (last.map { [$0] } ?? []) {
                if let index = key.intValue {
                    text += "[\(index)]"
                } else {
                    text += text.isEmpty ? key.stringValue : "." + key.stringValue
                }
            }
            return text
        }
        switch error {
        case .typeMismatch(let type, let context):
            self.init(field: path(context.codingPath), reason: "expected \(Self.describe(type))")
        case .valueNotFound(let type, let context):
            self.init(field: path(context.codingPath), reason: "expected \(Self.describe(type)), found null")
        case .keyNotFound(let key, let context):
            self.init(field: path(context.codingPath, key), reason: "required field missing")
        case .dataCorrupted(let context):
            let field = path(context.codingPath)
            self.init(field: field, reason: field.isEmpty ? "not valid JSON" : "invalid value (\(context.debugDescription))")
        @unknown default:
            self.init(field: "", reason: "cannot decode (\(error))")
        }
    }

    private static func describe(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: return "a string"
        case is Bool.Type: return "a boolean"
        case is UInt32.Type, is UInt64.Type: return "a non-negative integer"
        case is Int.Type, is Int64.Type: return "an integer"
        case is [String].Type: return "an array of strings"
        case is [String: String].Type: return "an object of strings"
        default:
            let name = String(describing: type)
            return name.hasPrefix("Array") ? "an array" : name.hasPrefix("Dictionary") ? "an object" : "a \(name)"
        }
    }
}
