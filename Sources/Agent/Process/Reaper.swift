// Reaps children and hands each exit status to the process it belongs to. One thread.
//
// As the guest's PID 1 (`everyChild`), every child and every orphan re-parented to us is
// reaped: SIGCHLD (blocked in all threads, read from a signalfd) → wait4(-1, WNOHANG) until
// none is left, plus a one-second sweep in case a signal was merged away. Elsewhere (tests on
// the host, `registered`), only registered processes are reaped, each through its pidfd, so
// other children of the test process are left alone.
//
// Registration and delivery share one lock: a process is launched with `launching`, which
// holds the lock from the clone until the pid is registered, so an exit that is reaped
// before the pid is known still finds its process.
#if canImport(Glibc)
import Glibc
#endif
import CAgent
import CSpawn
import Sys

/// Who gets an exit status.
public protocol ExitSink: AnyObject, Sendable {
    func exited(_ status: WaitStatus)
}

public final class Reaper: @unchecked Sendable {
    public enum Mode: Sendable { case everyChild, registered }

    public let mode: Mode
    private let monitor = Monitor()
    private var sinks: [Int32: (sink: any ExitSink, pidfd: Int32)] = [:]
    private let epoll: Int32
    private var signalFD: Int32 = -1
    public private(set) var orphansReaped = 0

    /// Call first thing in main, before any thread exists, when the agent reaps every child:
    /// SIGCHLD is then blocked in every thread and read from the reaper's signalfd.
    public static func blockChildSignal() {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGCHLD)
        pthread_sigmask(SIG_BLOCK, &set, nil)
    }

    public init(mode: Mode) throws(SystemError) {
        self.mode = mode
        epoll = try sys("epoll_create1") { epoll_create1(Int32(EPOLL_CLOEXEC)) }
        if mode == .everyChild {
            var set = sigset_t()
            sigemptyset(&set)
            sigaddset(&set, SIGCHLD)
            signalFD = try sys("signalfd SIGCHLD") { signalfd(-1, &set, Int32(SFD_CLOEXEC | SFD_NONBLOCK)) }
            var event = epoll_event(events: EPOLLIN.rawValue, data: epoll_data_t(fd: signalFD))
            try sys("epoll_ctl signalfd") { epoll_ctl(epoll, EPOLL_CTL_ADD, signalFD, &event) }
        }
        try startAgentThread(name: "reaper") { [self] in run() }
    }

    /// Runs `body` (which clones a process and returns its pid and pidfd, -1 for none) with
    /// the registry locked, and registers `sink` for that pid before anyone can deliver to it.
    public func launching<T>(_ sink: any ExitSink, _ body: () throws(SpawnError) -> (pid: Int32, pidfd: Int32, value: T)) throws(SpawnError) -> T {
        try monitor.withLock { () throws(SpawnError) -> T in
            let launched = try body()
            sinks[launched.pid] = (sink, launched.pidfd)
            if mode == .registered {
                var event = epoll_event(events: EPOLLIN.rawValue, data: epoll_data_t(u64: UInt64(UInt32(bitPattern: launched.pid))))
                if epoll_ctl(epoll, EPOLL_CTL_ADD, launched.pidfd, &event) != 0 {
                    Log.error("reaper: epoll_ctl pidfd of \(launched.pid): errno \(errno)")
                }
            }
            return launched.value
        }
    }

    /// How many processes wait for an exit (tests).
    public var registeredCount: Int { monitor.withLock { sinks.count } }

    private func deliver(pid: Int32, status: WaitStatus) {
        let entry = monitor.withLock { () -> (sink: any ExitSink, pidfd: Int32)? in
            guard let entry = sinks.removeValue(forKey: pid) else {
                orphansReaped += 1
                return nil
            }
            if mode == .registered { _ = epoll_ctl(epoll, EPOLL_CTL_DEL, entry.pidfd, nil) }
            return entry
        }
        if let entry {
            entry.sink.exited(status)
        } else {
            Log.debug("reaped orphan pid \(pid) (\(status))")
        }
    }

    private func run() {
        var events = [epoll_event](repeating: epoll_event(), count: 16)
        while true {
            // SAFETY: epoll_wait writes at most events.count entries into the array.
            let count = events.withUnsafeMutableBufferPointer { epoll_wait(epoll, $0.baseAddress, Int32($0.count), mode == .everyChild ? 1000 : -1) }
            if count < 0 {
                if errno == EINTR { continue }
                Log.error("reaper: epoll_wait: errno \(errno)")
                return
            }
            switch mode {
            case .everyChild:
                drainSignals()
                reapAll()
            case .registered:
                for index in 0..<Int(count) { reapRegistered(pid: Int32(bitPattern: UInt32(truncatingIfNeeded: events[index].data.u64))) }
            }
        }
    }

    private func drainSignals() {
        var info = signalfd_siginfo()
        // SAFETY: reads one signalfd_siginfo into the local struct.
        while withUnsafeMutableBytes(of: &info, { read(signalFD, $0.baseAddress, $0.count) }) > 0 {}
    }

    private func reapAll() {
        while true {
            var status: Int32 = 0
            let pid = wait4(-1, &status, WNOHANG, nil)
            if pid <= 0 { return }
            deliver(pid: pid, status: WaitStatus(raw: status))
        }
    }

    private func reapRegistered(pid: Int32) {
        guard let pidfd = monitor.withLock({ sinks[pid]?.pidfd }) else { return }
        var status: Int32 = 0
        let result = kvmrun_pidfd_reap(pidfd, &status)
        if result == 0 { deliver(pid: pid, status: WaitStatus(raw: status)) }
    }
}
