// `kvmrun relay`: the host process that stands for one container process (hidden; `kvmrun
// create` and `kvmrun exec` start it through ProcessRelay.spawn).
#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Runtime

struct RelayCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "relay",
        abstract: "Relay one container process's stdio, signals and exit status (internal).",
        discussion: "Started by 'kvmrun create' and 'kvmrun exec'; its pid is the one they report.",
        shouldDisplay: false
    )

    @Option(name: .customLong("config-fd"), help: "Read the relay configuration (JSON) from this descriptor.")
    var configFD: Int32?

    @Option(name: .customLong("config"), help: "Read the relay configuration (JSON) from this file.")
    var configPath: String?

    @Option(name: .customLong("ready-fd"), help: "Answer 'ok' or 'error: REASON' on this descriptor, then close it.")
    var readyFD: Int32 = -1

    func validate() throws {
        guard (configFD == nil) != (configPath == nil) else {
            throw ValidationError("give one of --config-fd and --config")
        }
        if let configFD, configFD < 0 { throw ValidationError("--config-fd must be a descriptor number") }
    }

    func run() throws {
        var fd = configFD ?? -1
        if let configPath {
            fd = open(configPath, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw ValidationError("--config \(configPath): \(String(cString: strerror(errno)))") }
        }
        Glibc.exit(ProcessRelay.runChild(configFD: fd, readyFD: readyFD))
    }
}
