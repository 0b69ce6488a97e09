// A bundle's config.json read for `AgentSpec.plan`: decoded but not yet validated, since
// `Spec.validate()` refuses what the plan drops with a warning (user and time namespaces, ID
// mappings), and the plan validates the spec itself once those are gone.
import FoundationEssentials
import OCI
import OCIJSON

extension AgentSpec {
    /// Decodes config.json; decoding errors name the field ("config.json: process.user.uid: …").
    public static func load(configJSON bytes: [UInt8]) throws(RuntimeError) -> OCI.Spec {
        do {
            return try JSONDecoder().decode(OCI.Spec.self, from: Data(bytes))
        } catch let error as DecodingError {
            let spec = SpecError(decoding: error)
            throw .invalidInput("config.json: \(spec.field.isEmpty ? "" : spec.field + ": ")\(spec.reason)")
        } catch {
            throw .invalidInput("config.json: not valid JSON (\(error))")
        }
    }
}
