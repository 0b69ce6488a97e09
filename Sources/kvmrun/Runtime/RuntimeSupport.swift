import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif
import FoundationEssentials
import Logging
import Runtime

/// What every runtime verb shares: the runtime opened with the global flags (--root, --log,
/// --log-format, --debug), and errors reported the way runc reports them (to the log in its
/// format, and to stderr), ending the command with status 1.
enum RuntimeCLI {
    nonisolated(unsafe) static var cachedLogger: Logger?

    static var logger: Logger {
        if let cachedLogger { return cachedLogger }
        let globals = GlobalOptions.current
        let logger = RuntimeLogging.bootstrap(logPath: globals.log, format: globals.logFormat, debug: globals.debug)
        cachedLogger = logger
        return logger
    }

    static func open() throws -> Runtime {
        do {
            let firmware = Result { () throws(RuntimeError) in try Firmware.locate() }
            let runtime = try Runtime(root: GlobalOptions.current.root, firmware: firmware,
                                      executable: Firmware.currentExecutable(), logger: logger)
            // How long a new sandbox's guest may take to answer (default 120 s; agent calls get half,
            // at least 30 s): slow hosts,
            // such as an emulated one booting many sandboxes at once, need more.
            if let text = getenv("KVMRUN_BOOT_TIMEOUT").map({ String(cString: $0) }) {
                guard let seconds = Int(text), (1...3600).contains(seconds) else {
                    throw RuntimeError.invalidInput("KVMRUN_BOOT_TIMEOUT=\(text): expected seconds in 1...3600")
                }
                runtime.vmDefaults.bootTimeoutSeconds = seconds
                // A host that slow is slow for the agent's calls too.
                runtime.agentCallTimeoutSeconds = max(30, seconds / 2)
            }
            return runtime
        } catch {
            fail(error)
        }
    }

    /// Runs a verb's body; a RuntimeError is logged and ends the process with status 1.
    static func run<T>(_ body: (Runtime) throws(RuntimeError) -> T) throws -> T {
        let runtime = try open()
        do {
            return try body(runtime)
        } catch {
            fail(error)
        }
    }

    static func fail(_ error: any Error) -> Never {
        logger.error("\(error)")
        exit((error as? RuntimeError)?.exitStatus ?? 1)
    }

    static func printJSON<T: Encodable>(_ value: T) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        if let data = try? encoder.encode(value) { print(String(decoding: data, as: UTF8.self)) }
    }

    /// runc's signal names: "KILL", "SIGKILL", "9".
    static func parseSignal(_ text: String) throws -> Int32 {
        if let number = Int32(text), number > 0, number < 65 { return number }
        let name = text.uppercased().hasPrefix("SIG") ? String(text.uppercased().dropFirst(3)) : text.uppercased()
        let table: [String: Int32] = [
            "HUP": SIGHUP, "INT": SIGINT, "QUIT": SIGQUIT, "ILL": SIGILL, "TRAP": SIGTRAP, "ABRT": SIGABRT, "IOT": SIGABRT,
            "BUS": SIGBUS, "FPE": SIGFPE, "KILL": SIGKILL, "USR1": SIGUSR1, "SEGV": SIGSEGV, "USR2": SIGUSR2,
            "PIPE": SIGPIPE, "ALRM": SIGALRM, "TERM": SIGTERM, "STKFLT": SIGSTKFLT, "CHLD": SIGCHLD, "CONT": SIGCONT,
            "STOP": SIGSTOP, "TSTP": SIGTSTP, "TTIN": SIGTTIN, "TTOU": SIGTTOU, "URG": SIGURG, "XCPU": SIGXCPU,
            "XFSZ": SIGXFSZ, "VTALRM": SIGVTALRM, "PROF": SIGPROF, "WINCH": SIGWINCH, "IO": SIGIO, "PWR": SIGPWR,
            "SYS": SIGSYS,
        ]
        guard let signal = table[name] else { throw ValidationError("unknown signal '\(text)'") }
        return signal
    }

    /// Sizes as runc's update takes them: a byte count, or with k/m/g (KiB, MiB, GiB); -1 = none.
    static func parseBytes(_ text: String) throws -> Int64 {
        let lower = text.lowercased()
        let units: [(String, Int64)] = [("kb", 1 << 10), ("mb", 1 << 20), ("gb", 1 << 30), ("k", 1 << 10), ("m", 1 << 20), ("g", 1 << 30), ("b", 1)]
        for (suffix, factor) in units where lower.hasSuffix(suffix) {
            guard let value = Int64(lower.dropLast(suffix.count)), value >= 0 else { break }
            return value * factor
        }
        guard let value = Int64(lower), value >= -1 else { throw ValidationError("invalid size '\(text)'") }
        return value
    }
}
