// runc's global flags, which engines put before the verb:
//   kvmrun --root R --log L --log-format json --systemd-cgroup create --bundle B --pid-file P ID
// swift-argument-parser hands flags before a subcommand to the root command, which has none, so
// they are taken off argv here first and the rest goes to the parser.
//
// Wiring (in Kvmrun.swift, the root command): replace ArgumentParser's `main()` with
//
//     static func main() {
//         do {
//             let (globals, rest) = try GlobalOptions.split(Array(CommandLine.arguments.dropFirst()))
//             GlobalOptions.current = globals
//             main(rest)                   // ArgumentParser's: parse `rest`, run, exit
//         } catch {
//             exit(withError: error)       // "Error: unknown global flag --foo …", status 1
//         }
//     }
//
// and have the runtime verbs read `GlobalOptions.current` (root, log, …) in `run()`, e.g.
// `RuntimeLogging.bootstrap(logPath: GlobalOptions.current.log, format: GlobalOptions.current.logFormat,
// debug: GlobalOptions.current.debug)`. (If the root command becomes an AsyncParsableCommand,
// the same with `static func main() async` and `await main(rest)`.)
#if canImport(Glibc)
import Glibc
#endif
import Runtime

struct GlobalOptions: Equatable, Sendable {
    /// Where sandbox and container state lives (runc: /run/runc).
    var root = "/run/kvmrun"
    /// --log FILE: log lines appended there, in `logFormat`.
    var log: String?
    var logFormat: LogFormat = .text
    /// --systemd-cgroup: cgroupsPath is "slice:prefix:name" (systemd's form), not a path.
    var systemdCgroup = false
    var debug = false
    /// runc's --rootless true|false|auto: accepted, kept, not acted on.
    var rootless: String?

    /// The flags of this process, set once by `main` before the verb runs (single-threaded then).
    nonisolated(unsafe) static var current = GlobalOptions()

    static let valueFlags: Set<String> = ["root", "log", "log-format", "criu", "rootless"]
    static let boolFlags: Set<String> = ["debug", "systemd-cgroup"]
    /// Left for ArgumentParser, which answers them.
    static let parserFlags: Set<String> = ["h", "help", "version", "generate-completion-script", "experimental-dump-help"]

    /// Takes the global flags off the front of `argv` (the arguments after the program name) up
    /// to the verb: `--flag value` and `--flag=value` (also one dash, as Go's flag package takes),
    /// bare booleans or `--debug=false`; `--criu PATH` is accepted and ignored. Stops at the
    /// first argument that is not a flag (the verb), at `--` (dropped), or at --help / --version.
    /// Returns the options and the rest of argv, verb first.
    static func split(_ argv: [String]) throws(GlobalOptionsError) -> (GlobalOptions, rest: [String]) {
        var options = GlobalOptions()
        var index = 0
        while index < argv.count {
            let argument = argv[index]
            if argument == "--" { index += 1; break }
            guard argument.hasPrefix("-"), argument != "-" else { break }
            let body = argument.drop { $0 == "-" }
            let name = String(body.prefix { $0 != "=" })
            let inline = body.firstIndex(of: "=").map { String(body[body.index(after: $0)...]) }
            if parserFlags.contains(name) { break }
            if boolFlags.contains(name) {
                let value = try inline.map { (text) throws(GlobalOptionsError) -> Bool in try parseBool(text, flag: name) } ?? true
                if name == "debug" { options.debug = value } else { options.systemdCgroup = value }
                index += 1
                continue
            }
            guard valueFlags.contains(name) else {
                throw GlobalOptionsError(description: "unknown global flag \(argument) (global flags go before the command: "
                    + "--root DIR, --log FILE, --log-format text|json, --systemd-cgroup, --debug, --rootless VALUE, --criu PATH)")
            }
            let value: String
            if let inline {
                value = inline
                index += 1
            } else {
                guard index + 1 < argv.count else { throw GlobalOptionsError(description: "--\(name) needs a value") }
                value = argv[index + 1]
                index += 2
            }
            try options.set(name, value)
        }
        return (options, Array(argv[index...]))
    }

    private mutating func set(_ name: String, _ value: String) throws(GlobalOptionsError) {
        switch name {
        case "root":
            guard !value.isEmpty else { throw GlobalOptionsError(description: "--root needs a directory, not an empty string") }
            root = Self.absolute(value)
            guard root != "/" else { throw GlobalOptionsError(description: "--root must not be / (got \"\(value)\")") }
        case "log":
            log = value.isEmpty ? nil : value
        case "log-format":
            // runc takes an empty format as the default, text.
            guard let format = value.isEmpty ? .text : LogFormat(rawValue: value) else {
                throw GlobalOptionsError(description: "invalid --log-format \"\(value)\" (text or json)")
            }
            logFormat = format
        case "rootless":
            rootless = value
        default:
            break  // --criu: checkpointing is not supported; accepted as runc still accepts it
        }
    }

    /// Go's strconv.ParseBool, which runc's flags use.
    private static func parseBool(_ text: String, flag: String) throws(GlobalOptionsError) -> Bool {
        switch text {
        case "1", "t", "T", "true", "TRUE", "True": return true
        case "0", "f", "F", "false", "FALSE", "False": return false
        default: throw GlobalOptionsError(description: "invalid value \"\(text)\" for --\(flag) (true or false)")
        }
    }

    /// `path` made absolute against the working directory, with trailing slashes and "."
    /// components dropped ("../x" stays as the kernel resolves it).
    static func absolute(_ path: String) -> String {
        var full = path
        if !path.hasPrefix("/") {
            var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
            // SAFETY: getcwd writes at most buffer.count bytes, NUL included, into the local buffer.
            if getcwd(&buffer, buffer.count) != nil {
                full = buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) } + "/" + path
            }
        }
        let parts = full.split(separator: "/").filter { $0 != "." }
        return "/" + parts.joined(separator: "/")
    }
}

/// A global flag that kvmrun does not know, or a bad value for one.
struct GlobalOptionsError: Error, CustomStringConvertible, Equatable {
    let description: String
}
