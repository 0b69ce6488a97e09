import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif
import Runtime

// The runc-compatible verbs that create, start, signal and remove containers. Each is a thin
// client of Runtime (Sources/Runtime); global flags (--root, --log, ...) come before the verb.

struct CreateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create", abstract: "Create a container in a microVM (its process waits for 'start').")

    @Option(name: [.short, .long], help: "The OCI bundle directory (with config.json).")
    var bundle: String = "."
    @Option(name: .long, help: "Unix socket that receives the pty master (SCM_RIGHTS) when process.terminal is set.")
    var consoleSocket: String?
    @Option(name: .long, help: "File to write the container's pid to.")
    var pidFile: String?
    @Flag(name: .long, help: "Accepted for runc compatibility (no effect).") var noPivot = false
    @Flag(name: .long, help: "Accepted for runc compatibility (no effect).") var noNewKeyring = false
    @Option(name: .long, help: "Accepted for runc compatibility: extra fds are not passed into a microVM.") var preserveFds: Int = 0
    @Argument(help: "The container id.") var id: String

    func run() throws {
        let options = CreateOptions(id: id, bundle: absolute(bundle), pidFile: pidFile.map(absolute), consoleSocket: consoleSocket)
        try RuntimeCLI.run { runtime throws(RuntimeError) in try runtime.create(options) }
    }
}

struct StartCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "start", abstract: "Start a created container's process.")
    @Argument(help: "The container id.") var id: String

    func run() throws {
        try RuntimeCLI.run { runtime throws(RuntimeError) in try runtime.start(id) }
    }
}

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run", abstract: "Create and start a container; without --detach, wait for it, then delete it.")

    @Option(name: [.short, .long], help: "The OCI bundle directory.") var bundle: String = "."
    @Option(name: .long, help: "Unix socket that receives the pty master.") var consoleSocket: String?
    @Option(name: .long, help: "File to write the container's pid to.") var pidFile: String?
    @Flag(name: [.short, .long], help: "Return once the container runs.") var detach = false
    @Flag(name: .long, help: "Keep the container's state after it exits.") var keep = false
    @Flag(name: .long, help: "Accepted for runc compatibility.") var noPivot = false
    @Flag(name: .long, help: "Accepted for runc compatibility.") var noNewKeyring = false
    @Option(name: .long, help: "Accepted for runc compatibility.") var preserveFds: Int = 0
    @Argument(help: "The container id.") var id: String

    func run() throws {
        let options = CreateOptions(id: id, bundle: absolute(bundle), pidFile: pidFile.map(absolute), consoleSocket: consoleSocket)
        let status: Int32 = try RuntimeCLI.run { runtime throws(RuntimeError) in
            try runtime.create(options)
            do throws(RuntimeError) {
                try runtime.start(id)
            } catch {
                try? runtime.delete(id, force: true)
                throw error
            }
            runtime.phase("started")
            if detach { return 0 }
            let pid = try runtime.state(id).pid
            var status: Int32 = 0
            // The relay is this process's child: its exit status is the container's.
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            runtime.phase("exited")
            if !keep { try runtime.delete(id, force: true) }
            runtime.phase("deleted")
            return (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        }
        throw ExitCode(status)
    }
}

struct StateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "state", abstract: "Print a container's OCI state as JSON.")
    @Argument(help: "The container id.") var id: String

    func run() throws {
        let state = try RuntimeCLI.run { runtime throws(RuntimeError) in try runtime.state(id) }
        RuntimeCLI.printJSON(state)
    }
}

struct KillCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "kill", abstract: "Send a signal (default SIGTERM) to a container's process.")
    @Flag(name: [.short, .long], help: "Signal the container's exec'd processes too.") var all = false
    @Argument(help: "The container id.") var id: String
    @Argument(help: "Signal: a name (KILL, SIGKILL) or number.") var signal: String = "SIGTERM"

    func run() throws {
        let number = try RuntimeCLI.parseSignal(signal)
        try RuntimeCLI.run { runtime throws(RuntimeError) in try runtime.kill(id, signal: number, all: all) }
    }
}

struct DeleteCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "delete", abstract: "Delete a container (and its sandbox VM with its last container).")
    @Flag(name: [.short, .long], help: "Kill a running container first.") var force = false
    @Argument(help: "The container id.") var id: String

    func run() throws {
        try RuntimeCLI.run { runtime throws(RuntimeError) in
            do throws(RuntimeError) {
                try runtime.delete(id, force: force)
            } catch .notFound(let what) where force {
                RuntimeCLI.logger.debug("delete --force: \(what) does not exist")
            }
        }
    }
}

struct PauseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "pause", abstract: "Freeze a container's processes.")
    @Argument(help: "The container id.") var id: String
    func run() throws { try RuntimeCLI.run { runtime throws(RuntimeError) in try runtime.pause(id) } }
}

struct ResumeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "resume", abstract: "Thaw a paused container.")
    @Argument(help: "The container id.") var id: String
    func run() throws { try RuntimeCLI.run { runtime throws(RuntimeError) in try runtime.resume(id) } }
}

/// A path made absolute against the working directory (engines pass absolute ones).
func absolute(_ path: String) -> String {
    if path.hasPrefix("/") { return path }
    var buffer = [CChar](repeating: 0, count: 4096)
    guard getcwd(&buffer, buffer.count) != nil else { return path }
    let cwd = String(cString: buffer)
    return path == "." ? cwd : cwd + "/" + path
}
