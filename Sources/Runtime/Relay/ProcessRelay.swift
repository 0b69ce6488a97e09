// The host relay of one container process, for runc compatibility: the pid `kvmrun create` and
// `kvmrun exec` report is a host process that lives exactly as long as the process in the
// microVM, moves its stdio, forwards the signals it gets and exits with its status, as Kata's
// old shim did; conmon and podman watch that pid. One relay per container init and per exec.
//
//   engine stdin/pty ──▶ relay ──WriteStdin / CloseStdin──▶ agent ──▶ process stdin
//   engine stdout    ◀── relay ◀──ReadStdout (to EOF)────── agent ◀── process stdout
//   engine stderr    ◀── relay ◀──ReadStderr (to EOF)────── agent ◀── process stderr
//   kill(relay, N)   ──▶ relay ──SignalProcess N──▶ agent ──▶ process
//   exit(status)     ◀── relay ◀──WaitProcess────── agent ◀── exit
//
// The agent serves all of these already between CreateContainer and StartContainer (the
// init's stdio exists, its streams block until output, WaitProcess until the exit), so the
// relay starts at create.
#if canImport(Glibc)
import Glibc
#endif
import Sys

public enum ProcessRelay {
    /// Runs the relay in this process (the `kvmrun relay` subcommand); returns the exit status
    /// to exit with: the process's exit code, 128+N when killed by signal N, 255 when the agent
    /// or the VM went away (said on stderr). `ready` is called once connected (and, with a
    /// terminal, once the pty master was sent), before any output is relayed. Call it before
    /// this process starts threads of its own: the signals it forwards are blocked in the
    /// calling thread and read from a signalfd. With a terminal this process becomes the
    /// leader of a new session (it must not lead a process group).
    public static func run(_ config: RelayConfig, ready: () -> Void) -> Int32 {
        let session: RelaySession
        do {
            session = try RelaySession.open(config)
        } catch {
            complain("\(config.subject): \(error)")
            return 255
        }
        ready()
        return session.serve()
    }

    /// The `kvmrun relay` subcommand's body: reads the configuration (JSON) from `configFD` to
    /// end-of-file, answers on `readyFD` (-1: none) "ok" once ready, or "error: REASON" when
    /// it cannot start, closes it, and relays. `spawn` is the other end.
    public static func runChild(configFD: Int32, readyFD: Int32) -> Int32 {
        func answer(_ text: String) {
            guard readyFD >= 0 else { return }
            RelayIO.writeBlocking(readyFD, Array((text + "\n").utf8))
            close(readyFD)
        }
        // Whoever spawned us reports the failure (naming the process); without a ready pipe, we do.
        func fail(_ message: String, subject: String? = nil) {
            if readyFD >= 0 { answer("error: \(message)") } else { complain((subject.map { "\($0): " } ?? "") + message) }
        }
        let config: RelayConfig
        do {
            config = try RelayConfig.decode(readAll(configFD))
        } catch {
            fail("\(error)")
            return 255
        }
        close(configFD)
        let session: RelaySession
        do {
            session = try RelaySession.open(config)
        } catch {
            fail("\(error)", subject: config.subject)
            return 255
        }
        answer("ok")
        return session.serve()
    }

    /// A message on the relay's stderr (the engine's, which the container's own stderr shares
    /// without a terminal).
    static func complain(_ message: String) {
        RelayIO.writeBlocking(STDERR_FILENO, Array("kvmrun relay: \(message)\n".utf8))
    }

    static func readAll(_ fd: Int32, limit: Int = 1 << 20) throws(RuntimeError) -> [UInt8] {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16 << 10)
        while true {
            let count: Int
            do {
                count = try StreamSocket.receive(fd, into: &chunk, what: "the relay configuration (fd \(fd))")
            } catch {
                throw .failed(step: "read the relay configuration", reason: "\(error)")
            }
            if count == 0 { return bytes }
            bytes += chunk[0..<count]
            guard bytes.count <= limit else { throw .invalidInput("relay configuration: more than \(limit) bytes") }
        }
    }
}
