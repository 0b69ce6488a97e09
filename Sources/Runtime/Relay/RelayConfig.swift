// What one relay serves: which process of which container, through which agent socket, with
// what stdio. Travels from `kvmrun create`/`kvmrun exec` to `kvmrun relay` as JSON on a pipe.
import FoundationEssentials

public struct RelayConfig: Codable, Sendable, Equatable {
    /// The hybrid-vsock Unix socket of the sandbox's VMM (`--vsock uds`).
    public var agentSocket: String
    /// True: `agentSocket` is a plain Unix socket the agent serves itself (the host tests).
    public var agentSocketIsDirect: Bool
    public var containerID: String
    /// The process's exec id; the container id for its init.
    public var execID: String
    /// The process has a terminal: the relay makes a host pty and sends its master to
    /// `consoleSocket` (runc's `--console-socket`), which is then required.
    public var terminal: Bool
    public var consoleSocket: String?
    /// Without a terminal: relay fd 0 to the process's stdin until end-of-file, then close it
    /// (runc's behaviour: the process reads what the engine gave as stdin, and /dev/null is an
    /// end-of-file at once). False: close the process's stdin at once and leave fd 0 alone.
    public var stdinOpen: Bool
    /// Where the relay writes the exit status (decimal text and a newline, atomically) when the
    /// process has ended, or 255 when the agent went away.
    public var exitFile: String?
    /// Created (empty) before the relay exits when the guest's OOM killer struck in the
    /// container's cgroup: podman's `<bundle>/oom`, which conmon cannot write itself because
    /// the cgroup is in the guest. Only for a container's init.
    public var oomFile: String?
    /// The host pty's first window size (the spec's process.consoleSize, as runc sets it on the
    /// pty it makes); 0 leaves it to the engine's first resize.
    public var consoleRows: UInt16
    public var consoleColumns: UInt16

    public init(agentSocket: String, agentSocketIsDirect: Bool = false, containerID: String, execID: String? = nil,
                terminal: Bool = false, consoleSocket: String? = nil, stdinOpen: Bool = true, exitFile: String? = nil,
                oomFile: String? = nil, consoleRows: UInt16 = 0, consoleColumns: UInt16 = 0) {
        self.agentSocket = agentSocket
        self.agentSocketIsDirect = agentSocketIsDirect
        self.containerID = containerID
        self.execID = execID ?? containerID
        self.terminal = terminal
        self.consoleSocket = consoleSocket
        self.stdinOpen = stdinOpen
        self.exitFile = exitFile
        self.oomFile = oomFile
        self.consoleRows = consoleRows
        self.consoleColumns = consoleColumns
    }

    /// "container c1" or "process e1 of container c1", for messages.
    var subject: String {
        execID == containerID ? "container \(containerID)" : "process \(execID) of container \(containerID)"
    }

    public func validate() throws(RuntimeError) {
        guard !agentSocket.isEmpty else { throw .invalidInput("relay for \(subject): no agent socket") }
        guard !containerID.isEmpty, !execID.isEmpty else { throw .invalidInput("relay: empty container or exec id") }
        if terminal, consoleSocket?.isEmpty ?? true {
            throw .invalidInput("relay for \(subject): a terminal needs a console socket (--console-socket)")
        }
    }

    public func encoded() throws(RuntimeError) -> [UInt8] {
        do {
            return Array(try JSONEncoder().encode(self))
        } catch {
            throw .failed(step: "encode the relay configuration", reason: "\(error)")
        }
    }

    public static func decode(_ bytes: [UInt8]) throws(RuntimeError) -> RelayConfig {
        do {
            return try JSONDecoder().decode(RelayConfig.self, from: Data(bytes))
        } catch {
            throw .invalidInput("relay configuration: \(error)")
        }
    }
}
