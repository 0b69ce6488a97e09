// One relay at work: its agent connection, its pty (with a terminal), the threads that move
// the process's stdio, the wait for its exit, and the main loop that forwards signals until
// then.
#if canImport(Glibc)
import Glibc
#endif
import AgentClient
import AgentProtocol
import FoundationEssentials
import Synchronization
import Sys

final class RelaySession: Sendable {
    let config: RelayConfig
    let client: AgentClient
    let terminal: RelayTerminal?
    private let signals: FileDescriptor
    /// Fired when the relay winds down: stdin reads and output writes give up.
    let stop: RelayEvent
    /// Fired when WaitProcess has answered (or failed).
    let exited: RelayEvent
    private let outputs = RelayThreads()
    private let others = RelayThreads()
    private let outcome = Mutex<Outcome?>(nil)
    let closing = Atomic<Bool>(false)

    enum Outcome {
        case exited(Int32)
        /// The agent went away or refused WaitProcess: the reason.
        case lost(String)
    }

    /// How long the output streams may run on after the exit: the agent ends each stream
    /// within its drain time (500 ms of silence after the exit); a background process that
    /// keeps writing must not keep the relay, whose life is the process's, alive.
    static let drainLimit: Duration = .seconds(3)
    /// When the relay lets go of its executable's pages the second time (`SettledRelease`).
    static let settledReleaseDelay: Duration = .seconds(5)
    static let readLength: UInt32 = 32 << 10

    /// Takes the signals (before the client's reader thread exists), connects to the agent,
    /// then, with a terminal, makes the pty and sends its master to the console socket.
    static func open(_ config: RelayConfig) throws(RuntimeError) -> RelaySession {
        try config.validate()
        let signals = try RelaySignals.take()
        let client = try connect(config)
        do {
            let terminal = try config.terminal
                ? RelayTerminal.open(consoleSocket: config.consoleSocket ?? "", rows: config.consoleRows, columns: config.consoleColumns)
                : nil
            return try RelaySession(config: config, client: client, terminal: terminal, signals: signals)
        } catch {
            client.close()
            throw error
        }
    }

    private init(config: RelayConfig, client: AgentClient, terminal: RelayTerminal?, signals: FileDescriptor) throws(RuntimeError) {
        self.config = config
        self.client = client
        self.terminal = terminal
        self.signals = signals
        stop = try RelayEvent("the relay's stop")
        exited = try RelayEvent("the process's exit")
    }

    private static func connect(_ config: RelayConfig) throws(RuntimeError) -> AgentClient {
        do {
            if config.agentSocketIsDirect {
                return try AgentClient(connection: try StreamSocket.connectUnix(config.agentSocket))
            }
            return try AgentClient.connect(hybridVsock: config.agentSocket)
        } catch {
            throw .failed(step: "connect to the agent at \(config.agentSocket)", reason: "\(error)")
        }
    }

    /// Relays until the process has exited and its output is drained; the status to exit
    /// with. Every thread it started has returned (or is unblocked and returning) by then.
    func serve() -> Int32 {
        do {
            try startPumps()
        } catch {
            settle(.lost("\(error)"))
            exited.fire()
        }
        // From here the relay mostly waits, for as long as the container lives: let go of the
        // executable's pages that its start-up touched (as the VMM does, `ExecutableText`);
        // what the pumps and the signal loop run faults back from the page cache (an idle
        // relay: 5.1 MiB PSS before, 3.3 to 4.7 after; README "Runtime figures").
        ExecutableText.releaseResidentPages()
        forwardSignals()
        let result = outcome.withLock { $0 } ?? .lost("no answer to WaitProcess")
        if case .exited = result {
            _ = outputs.join(deadline: MonotonicClock.deadline(after: Self.drainLimit))
        }
        closing.store(true, ordering: .sequentiallyConsistent)
        stop.fire()
        client.close()
        _ = outputs.join(deadline: MonotonicClock.deadline(after: .seconds(5)))
        _ = others.join(deadline: MonotonicClock.deadline(after: .seconds(5)))
        let status: Int32
        switch result {
        case let .exited(code):
            status = min(max(code, 0), 255)
        case let .lost(reason):
            status = 255
            complain("\(reason); exiting with 255")
        }
        if let path = config.exitFile {
            do {
                try RelayIO.writeAtomically("\(status)\n", to: path)
            } catch {
                complain("write the exit file: \(error)")
            }
        }
        return status
    }

    private func startPumps() throws(RuntimeError) {
        let output = terminal?.slave.raw ?? STDOUT_FILENO
        try outputs.start("stdout") { [self] in pumpOutput(stderr: false, to: output) }
        if terminal == nil {
            try outputs.start("stderr") { [self] in pumpOutput(stderr: true, to: STDERR_FILENO) }
        }
        if let terminal {
            // A hangup of the engine's side is SIGHUP (we lead the pty's session), not an EOF.
            let input = terminal.slave.raw
            try others.start("stdin") { [self] in pumpInput(from: input, closeAtEnd: false) }
            if let size = terminal.windowSize() { resize(size) }
        } else if config.stdinOpen {
            try others.start("stdin") { [self] in pumpInput(from: STDIN_FILENO, closeAtEnd: true) }
        } else {
            closeStdin()
        }
        try others.start("wait") { [self] in waitForExit() }
    }

    // MARK: the exit

    private func waitForExit() {
        var request = Grpc_WaitProcessRequest()
        request.containerID = config.containerID
        request.execID = config.execID
        do {
            let status = try client.waitProcess(request).status
            if let oomFile = config.oomFile { reportOOM(to: oomFile) }
            settle(.exited(status))
        } catch {
            if case .connection = error {
                settle(.lost("the agent connection is gone, and with it the VM? (\(error))"))
            } else {
                settle(.lost("\(error)"))
            }
        }
        exited.fire()
    }

    /// Creates `path` when the container's cgroup in the guest counts an OOM kill (the agent's
    /// stats carry memory.events' oom_kill), before the exit is reported.
    private func reportOOM(to path: String) {
        var request = Grpc_StatsContainerRequest()
        request.containerID = config.containerID
        do {
            let kills = try client.statsContainer(request).cgroupStats.memoryStats.stats["oom_kill"] ?? 0
            guard kills > 0 else { return }
            try RelayIO.writeAtomically("", to: path)
        } catch {
            complain("check for an OOM kill: \(error)")
        }
    }

    private func settle(_ result: Outcome) {
        outcome.withLock { if $0 == nil { $0 = result } }
    }

    // MARK: the main loop

    /// Until the exit: each signal delivered to the relay goes to the process; SIGWINCH
    /// carries the pty's new size.
    private func forwardSignals() {
        var entries = [pollfd(fd: signals.raw, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: exited.fd.raw, events: Int16(POLLIN), revents: 0)]
        // Once the container has run a while, what the pumps' first transfers and the first
        // calls to the agent touched of the executable goes too (as the VMM does).
        var settled = SettledRelease(delay: Self.settledReleaseDelay)
        settled.start()
        while true {
            entries[0].revents = 0
            entries[1].revents = 0
            if poll(&entries, 2, settled.done ? -1 : 1000) < 0, errno != EINTR { return }
            settled.poll()
            while let number = RelaySignals.next(signals) {
                if number == SIGWINCH {
                    if let size = terminal?.windowSize() { resize(size) }
                } else {
                    forward(number)
                }
            }
            if entries[1].revents != 0 { return }
        }
    }

    private func forward(_ number: Int32) {
        var request = Grpc_SignalProcessRequest()
        request.containerID = config.containerID
        request.execID = config.execID
        request.signal = UInt32(number)
        do {
            try client.signalProcess(request)
        } catch {
            if !gone(error) { complain("forward signal \(number): \(error)") }
        }
    }

    private func resize(_ size: (rows: UInt16, columns: UInt16)) {
        var request = Grpc_TtyWinResizeRequest()
        request.containerID = config.containerID
        request.execID = config.execID
        request.row = UInt32(size.rows)
        request.column = UInt32(size.columns)
        do {
            try client.ttyWinResize(request)
        } catch {
            if !gone(error) { complain("resize the terminal to \(size.rows)x\(size.columns): \(error)") }
        }
    }

    /// Whether a failed call only says the process is gone (exited and forgotten by the agent,
    /// or the relay winding down): nothing to report, WaitProcess reports the rest.
    func gone(_ error: AgentError) -> Bool {
        exited.fired || error.code == .notFound
    }

    func complain(_ message: String) {
        ProcessRelay.complain("\(config.subject): \(message)")
    }
}
