// One process of a container (its init, or one started by ExecProcess): its state behind one
// lock, its exit waiters, its stdio. The reaper delivers the exit status; WaitProcess blocks
// on it; the status is kept until waited for.
#if canImport(Glibc)
import Glibc
#endif
import CAgent
import CSpawn
import Sys

public final class ContainerProcess: ExitSink, @unchecked Sendable {
    public enum State: Equatable, Sendable, CustomStringConvertible {
        /// Set up and waiting for StartContainer (a container's init only).
        case created
        case running
        case exited(WaitStatus)

        public var description: String {
            switch self {
            case .created: return "created"
            case .running: return "running"
            case .exited(let status): return "exited (\(status))"
            }
        }
    }

    public let execID: String
    public let isInit: Bool
    public let terminal: Bool
    public private(set) var pid: Int32 = 0
    private var pidfd: Int32 = -1
    private let monitor = Monitor()
    private var state: State = .created
    private var wasWaited = false
    /// WaitProcess has returned its status.
    public var waited: Bool { monitor.withLock { wasWaited } }
    /// ReadStdout / ReadStderr returned end-of-file (guarded by the sandbox's lock).
    private var stdoutEnded = false
    private var stderrEnded = false
    /// Fired once the process has exited (wakes blocked readers, who then drain and stop).
    public let exitEvent: Event
    public private(set) var stdin: InputStream?
    public private(set) var stdout: OutputStream?
    public private(set) var stderr: OutputStream?
    /// Called once with the exit status, after waiters are woken (the container's hook).
    var onExit: (@Sendable (WaitStatus) -> Void)?

    init(execID: String, isInit: Bool, terminal: Bool) throws(SystemError) {
        self.execID = execID
        self.isInit = isInit
        self.terminal = terminal
        exitEvent = try Event()
    }

    deinit { if pidfd >= 0 { close(pidfd) } }

    /// After launch: the pid, pidfd and the agent's ends of the process's stdio.
    func attach(pid: Int32, pidfd: Int32, stdin: InputStream?, stdout: OutputStream?, stderr: OutputStream?) {
        monitor.withLock {
            self.pid = pid
            self.pidfd = pidfd
            self.stdin = stdin
            self.stdout = stdout
            self.stderr = stderr
        }
    }

    func markRunning() {
        monitor.withLock {
            if state == .created { state = .running }
        }
    }

    func outputEnded(stderr: Bool) {
        if stderr { stderrEnded = true } else { stdoutEnded = true }
    }

    /// Both output streams were read to the end (a terminal has no stderr stream).
    var outputDone: Bool { stdoutEnded && (stderrEnded || terminal || stderr == nil) }

    public var currentState: State { monitor.withLock { state } }

    public var exitStatus: WaitStatus? {
        monitor.withLock {
            if case .exited(let status) = state { return status }
            return nil
        }
    }

    public func exited(_ status: WaitStatus) {
        let hook = monitor.withLock { () -> (@Sendable (WaitStatus) -> Void)? in
            state = .exited(status)
            monitor.broadcast()
            return onExit
        }
        exitEvent.fire()
        Log.info("process \(execID) (pid \(pid)) \(status)")
        hook?(status)
    }

    /// Blocks until the process has exited or `cancellation` (an fd, -1 for none) becomes
    /// readable; nil when cancelled. Marks the process waited.
    public func wait(cancellation: Int32) -> WaitStatus? {
        var polls = [pollfd(fd: exitEvent.fd, events: Int16(POLLIN), revents: 0), pollfd(fd: cancellation, events: Int16(POLLIN), revents: 0)]
        while polls[0].revents == 0 {
            if Glibc.poll(&polls, 2, -1) < 0, errno != EINTR { break }
            if polls[1].revents != 0, polls[0].revents == 0 { return nil }
        }
        return wait()
    }

    /// Blocks until the process has exited; marks it waited.
    public func wait() -> WaitStatus {
        monitor.withLock {
            _ = monitor.wait { if case .exited = state { return true } else { return false } }
            wasWaited = true
            if case .exited(let status) = state { return status }
            return WaitStatus.killed(0)   // unreachable: the wait above only ends on exit
        }
    }

    /// Sends `signal` (through the pidfd, so a recycled pid is never hit). A process that
    /// already exited is not an error (ESRCH is ignored, as Kata does).
    public func signal(_ signal: Int32) throws(AgentError) {
        try monitor.withLock { () throws(AgentError) in
            if case .exited = state { return }
            guard pid > 0 else { throw AgentError(.failedPrecondition, "process \(execID) has not started") }
            let result = pidfd >= 0 ? kvmrun_pidfd_signal(pidfd, signal) : kill(pid, signal)
            if result != 0, errno != ESRCH {
                throw AgentError(SystemError(call: "signal \(signal) to pid \(pid)", errno: errno), while: "SignalProcess")
            }
        }
    }

    /// Whether the process catches `signal` (SigCgt in /proc/PID/status).
    public func handles(_ signal: Int32) -> Bool {
        guard let text = Files.readText("/proc/\(pid)/status"),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("SigCgt:") }),
              let mask = UInt64(line.dropFirst(7).trimmingCharacters(in: " \t"), radix: 16) else { return false }
        return mask & (1 << UInt64(signal - 1)) != 0
    }
}

extension Substring {
    func trimmingCharacters(in set: String) -> String {
        let characters = Set(set)
        var text = self
        while let first = text.first, characters.contains(first) { text = text.dropFirst() }
        while let last = text.last, characters.contains(last) { text = text.dropLast() }
        return String(text)
    }
}
