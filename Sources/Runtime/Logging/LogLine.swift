// One log line in runc's formats, which are logrus's: `--log-format json` is
//   {"level":"error","msg":"container c1 does not exist","time":"2026-12-02T10:00:00Z"}
// (one object per line, keys sorted, the fields merged in, a field named like a fixed key
// prefixed "fields.", strings escaped as Go's encoding/json does), and `--log-format text` is
//   time="2026-12-02T10:00:00Z" level=error msg="container c1 does not exist" id=c1
// (time, level, msg, then the fields sorted; a value quoted Go-style when it holds anything
// but letters, digits and -._/@^+). Times are RFC 3339 in UTC, to the second, as logrus's default.
#if canImport(Glibc)
import Glibc
#endif
import Logging

public enum LogFormat: String, Sendable, CaseIterable {
    case text, json
}

enum LogLine {
    /// logrus's level names. swift-log's notice is logrus's info; critical is written as error
    /// (logrus's fatal means the process exits, and engines look for "error").
    static func levelName(_ level: Logger.Level) -> String {
        switch level {
        case .trace: "trace"
        case .debug: "debug"
        case .info, .notice: "info"
        case .warning: "warning"
        case .error, .critical: "error"
        }
    }

    /// The line for `message` with `fields` (already flattened), ending in "\n".
    static func format(_ format: LogFormat, level: Logger.Level, message: String, fields: [String: String], time: String) -> String {
        switch format {
        case .json:
            var all = ["level": levelName(level), "msg": message, "time": time]
            for (key, value) in fields {
                all[all[key] == nil ? key : "fields." + key] = value
            }
            let members = all.keys.sorted().map { "\(jsonString($0)):\(jsonString(all[$0]!))" }
            return "{" + members.joined(separator: ",") + "}\n"
        case .text:
            var line = "time=\(textValue(time)) level=\(levelName(level)) msg=\(textValue(message))"
            for key in fields.keys.sorted() {
                line += " \(key)=\(textValue(fields[key]!))"
            }
            return line + "\n"
        }
    }

    /// Now, as RFC 3339 UTC to the second ("2026-12-02T10:00:00Z").
    static func now() -> String {
        var seconds = time_t(0)
        time(&seconds)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T"
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec))Z"
    }

    /// A metadata value as one string (nested lists and dictionaries as swift-log prints them).
    static func flatten(_ value: Logger.MetadataValue) -> String {
        switch value {
        case .string(let text): text
        case .stringConvertible(let convertible): convertible.description
        default: value.description
        }
    }

    /// A JSON string literal, escaped as Go's encoding/json escapes (HTML characters included).
    static func jsonString(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "<", ">", "&", "\u{2028}", "\u{2029}": out += unicodeEscape(scalar.value)
            default: if scalar.value < 0x20 { out += unicodeEscape(scalar.value) } else { out.unicodeScalars.append(scalar) }
            }
        }
        return out + "\""
    }

    /// A logfmt value: bare when it is made of letters, digits and -._/@^+, else Go-quoted;
    /// empty stays empty (logrus does not quote empty fields by default).
    static func textValue(_ text: String) -> String {
        let bare = text.unicodeScalars.allSatisfy { scalar in
            ("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar) || ("0"..."9").contains(scalar)
                || "-._/@^+".unicodeScalars.contains(scalar)
        }
        if bare { return text }
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7f {
                    out += "\\x" + hex(scalar.value, digits: 2)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }

    private static func unicodeEscape(_ value: UInt32) -> String { "\\u" + hex(value, digits: 4) }

    private static func hex(_ value: UInt32, digits: Int) -> String {
        let text = String(value, radix: 16)
        return String(repeating: "0", count: max(0, digits - text.count)) + text
    }
}
