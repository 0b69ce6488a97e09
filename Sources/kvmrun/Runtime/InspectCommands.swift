import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif
import FoundationEssentials
import OCI
import OCIJSON
import Runtime

struct ExecCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "exec", abstract: "Run a new process in a running container.")

    @Option(name: [.short, .long], help: "A process.json (the OCI spec's process object).") var process: String?
    @Flag(name: [.short, .long], help: "Give the process a terminal.") var tty = false
    @Flag(name: [.short, .long], help: "Return once the process runs.") var detach = false
    @Option(name: .long, help: "File to write the process's pid to.") var pidFile: String?
    @Option(name: .long, help: "Unix socket that receives the pty master.") var consoleSocket: String?
    @Option(name: .long, help: "Working directory in the container.") var cwd: String?
    @Option(name: [.short, .long], help: "An environment variable, NAME=VALUE (repeatable).") var env: [String] = []
    @Option(name: [.short, .long], help: "UID[:GID] to run as.") var user: String?
    @Option(name: [.customShort("g"), .long], help: "Additional group ids.") var additionalGids: [UInt32] = []
    @Option(name: [.customShort("c"), .long], help: "Accepted for runc compatibility.") var cap: [String] = []
    @Flag(name: .long, help: "Set no_new_privileges.") var noNewPrivs = false
    @Option(name: .long, help: "Accepted for runc compatibility.") var processLabel: String?
    @Option(name: .long, help: "Accepted for runc compatibility.") var apparmor: String?
    @Option(name: .long, help: "Accepted for runc compatibility.") var preserveFds: Int = 0
    @Flag(name: .long, help: "Accepted for runc compatibility.") var ignorePaused = false
    @Argument(help: "The container id.") var id: String
    @Argument(parsing: .captureForPassthrough, help: "The command and its arguments (without --process).") var command: [String] = []

    func run() throws {
        var spec: Spec.Process
        if let process {
            guard let bytes = readFile(process) else { throw ValidationError("--process \(process): cannot be read") }
            do {
                spec = try JSONDecoder().decode(Spec.Process.self, from: Data(bytes))
            } catch {
                throw ValidationError("--process \(process): not a valid OCI process: \(error)")
            }
        } else {
            let args = command.first == "--" ? Array(command.dropFirst()) : command
            guard !args.isEmpty else { throw ValidationError("exec needs --process FILE or a command") }
            spec = Spec.Process(terminal: tty, args: args, env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], cwd: "/")
        }
        if tty { spec.terminal = true }
        if let cwd { spec.cwd = cwd }
        if !env.isEmpty { spec.env = (spec.env ?? []) + env }
        if let user {
            let parts = user.split(separator: ":")
            guard let uid = parts.first.flatMap({ UInt32($0) }) else { throw ValidationError("--user \(user): expected UID[:GID]") }
            spec.user.uid = uid
            if parts.count > 1, let gid = UInt32(parts[1]) { spec.user.gid = gid }
        }
        if !additionalGids.isEmpty { spec.user.additionalGids = additionalGids }
        if noNewPrivs { spec.noNewPrivileges = true }
        let options = ExecOptions(id: id, process: spec, detach: detach, pidFile: pidFile.map(absolute), consoleSocket: consoleSocket)
        let status = try RuntimeCLI.run { runtime throws(RuntimeError) in try runtime.exec(options) }
        throw ExitCode(status)
    }
}

struct PsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ps", abstract: "List the host processes that stand for a container's processes.")
    @Option(name: [.short, .long], help: "table or json.") var format: String = "table"
    @Argument(help: "The container id.") var id: String
    @Argument(parsing: .captureForPassthrough, help: "Accepted for runc compatibility (ps options).") var psArguments: [String] = []

    func run() throws {
        let pids = try RuntimeCLI.run { runtime throws(RuntimeError) in try runtime.processes(id) }
        if format == "json" {
            RuntimeCLI.printJSON(pids)
        } else {
            print("PID")
            for pid in pids { print(pid) }
        }
    }
}

struct ListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List containers.", aliases: ["ls"])
    @Option(name: [.short, .long], help: "table or json.") var format: String = "table"
    @Flag(name: [.short, .long], help: "Ids only.") var quiet = false

    struct Entry: Encodable {
        var ociVersion: String, id: String, pid: Int32, status: String, bundle: String, rootfs: String, created: String, owner: String
        var annotations: [String: String]?
    }

    func run() throws {
        let entries = try RuntimeCLI.run { runtime throws(RuntimeError) in runtime.list() }
        if quiet {
            for (state, _) in entries { print(state.id) }
            return
        }
        let rows = entries.map { state, record in
            Entry(ociVersion: state.ociVersion, id: state.id, pid: state.pid, status: state.status, bundle: state.bundle,
                  rootfs: record.bundle + "/rootfs", created: record.createdAt, owner: "root",
                  annotations: state.annotations?.isEmpty == false ? state.annotations : nil)
        }
        if format == "json" {
            RuntimeCLI.printJSON(rows)
            return
        }
        func pad(_ text: String, _ width: Int) -> String { text + String(repeating: " ", count: max(1, width - text.count)) }
        let idWidth = max(4, (rows.map(\.id.count).max() ?? 0) + 2)
        print(pad("ID", idWidth) + pad("PID", 10) + pad("STATUS", 10) + pad("BUNDLE", 40) + pad("CREATED", 32) + "OWNER")
        for row in rows {
            print(pad(row.id, idWidth) + pad(String(row.pid), 10) + pad(row.status, 10) + pad(row.bundle, 40) + pad(row.created, 32) + row.owner)
        }
    }
}

func readFile(_ path: String) -> [UInt8]? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        // SAFETY: reads into the local chunk, at most its size.
        let count = read(fd, &chunk, chunk.count)
        if count < 0 && errno == EINTR { continue }
        if count <= 0 { break }
        bytes += chunk[0..<count]
    }
    return bytes
}
