// OCI hooks (config.md "POSIX-platform Hooks", runtime.md "Lifecycle"), run on the host.
//
// Each hook of a phase runs in the order listed, one after the other, with the container's
// state JSON (OCIState) on stdin, its `args` as argv (args[0] is argv[0]; none: argv is the
// path), its `env` as the whole environment (none: the runtime's environment, as runc does),
// the bundle as its working directory (as runc, which runs in the bundle), and its `timeout` in seconds (none: no limit); past the timeout
// the hook's process group is killed. stdout and stderr are kept for the error text.
//
// When each phase runs and what its failure does, per the runtime spec 1.3.0 (lifecycle steps):
//
// | phase                    | runs                                                    | a failing hook               |
// | ------------------------ | ------------------------------------------------------- | ---------------------------- |
// | prestart (deprecated)    | create, environment made, before createRuntime          | error: stop the container*   |
// | createRuntime            | create, after prestart                                  | error: stop the container*   |
// | createContainer          | create, after createRuntime                             | error: stop the container*   |
// | startContainer           | start, before the user's process runs                   | error: stop the container*   |
// | poststart                | start, after the user's process started, before return  | error: stop the container*   |
// | poststop                 | delete, after the container is destroyed                | warning; the rest still run  |
//
// * "generate an error, stop the container, and continue the lifecycle at step 12": the
//   operation fails, the container is destroyed and the poststop hooks still run. Use `run`
//   (stops at the first failing hook, throws) for these and `runIgnoringFailures` (runs them
//   all, returns the warnings) for poststop.
//
// Poststart: runtime-spec 1.0.2 to 1.2.x said "log a warning and continue"; 1.3.0 changed it to
// an error because runc has always failed `start` (and killed the container) on a poststart
// failure. kvmrun follows 1.3.0 and runc.
//
// createContainer and startContainer belong in the container namespace, which for kvmrun is in
// the guest; run here they run on the host, in the runtime namespace, with the host pid.
#if canImport(Glibc)
import Glibc
#endif
import OCI

public enum HookRunner {
    /// Whether a failing hook of `phase` fails the operation (every phase but poststop).
    public static func failureIsFatal(phase: String) -> Bool { phase != "poststop" }

    /// Runs `hooks` in order; the first that cannot start, exits non-zero, dies of a signal or
    /// outlives its timeout throws `.failed(step: "PHASE hook N (PATH)", reason: …)` with the end
    /// of its stdout and stderr, and the hooks after it do not run.
    public static func run(_ hooks: [OCI.Spec.Hook], phase: String, state: OCIState) throws(RuntimeError) {
        guard !hooks.isEmpty else { return }
        let input = state.json()
        for (index, hook) in hooks.enumerated() {
            if let failure = runOne(hook, index: index, phase: phase, input: input, directory: state.bundle) { throw failure }
        }
    }

    /// Runs every hook of `hooks` in order whatever the others did; returns one warning per
    /// failing hook (the text `run` would have thrown), empty when all succeeded.
    public static func runIgnoringFailures(_ hooks: [OCI.Spec.Hook], phase: String, state: OCIState) -> [String] {
        guard !hooks.isEmpty else { return [] }
        let input = state.json()
        return hooks.enumerated().compactMap { index, hook in
            runOne(hook, index: index, phase: phase, input: input, directory: state.bundle)?.description
        }
    }

    /// Nil on success, else the failure naming the phase, the hook and what happened.
    private static func runOne(_ hook: OCI.Spec.Hook, index: Int, phase: String, input: [UInt8],
                               directory: String) -> RuntimeError? {
        let step = "\(phase) hook \(index) (\(hook.path))"
        let process: HookProcess
        do {
            // In the bundle when it is there (it is for every container; a state naming a gone
            // bundle leaves the runtime's own working directory).
            process = try HookProcess.run(hook, input: input, directory: access(directory, X_OK) == 0 ? directory : nil)
        } catch {
            return .failed(step: step, reason: "cannot start: \(error)")
        }
        let what: String
        switch process.outcome {
        case .exited(0): return nil
        case .exited(let status): what = "exited with status \(status)"
        case .signalled(let signal): what = "killed by signal \(signal) (\(signalName(signal)))"
        case .timedOut(let seconds): what = "still running after its timeout of \(seconds) s (killed)"
        case .lost: what = "reaped by another waiter (exit status unknown)"
        }
        var reason = what
        if !process.stdout.isEmpty { reason += "; stdout: \(process.stdout)" }
        if !process.stderr.isEmpty { reason += "; stderr: \(process.stderr)" }
        return .failed(step: step, reason: reason)
    }

    private static func signalName(_ signal: Int32) -> String {
        switch signal {
        case SIGKILL: "SIGKILL"
        case SIGTERM: "SIGTERM"
        case SIGINT: "SIGINT"
        case SIGSEGV: "SIGSEGV"
        case SIGABRT: "SIGABRT"
        case SIGPIPE: "SIGPIPE"
        case SIGHUP: "SIGHUP"
        default: String(cString: strsignal(signal))
        }
    }
}
