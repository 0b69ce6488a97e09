// The signals the relay takes for the container's process: blocked in every thread (before the
// first one starts) and read from a signalfd by the relay's main loop, which forwards them with
// SignalProcess; SIGWINCH becomes TtyWinResize.
#if canImport(Glibc)
import Glibc
#endif
import CRuntime
import Sys

enum RelaySignals {
    /// Every signal a sender can mean for the process, as Kata's shim forwarded them: not
    /// SIGKILL and SIGSTOP (they cannot be caught: they stop or end the relay itself), not
    /// SIGCHLD (the relay has no children), SIGPIPE (ignored: a closed engine pipe is EPIPE),
    /// SIGWINCH (a resize) or the synchronous fault signals (a fault of the relay's own).
    static var forwarded: [Int32] {
        let standard: [Int32] = [SIGHUP, SIGINT, SIGQUIT, SIGABRT, SIGUSR1, SIGUSR2, SIGALRM, SIGTERM,
                                 SIGSTKFLT, SIGCONT, SIGTSTP, SIGTTIN, SIGTTOU, SIGURG, SIGXCPU, SIGXFSZ,
                                 SIGVTALRM, SIGPROF, SIGIO, SIGPWR]
        return standard + Array(kvmrun_sigrtmin()...kvmrun_sigrtmax())
    }

    /// Blocks the forwarded signals and SIGWINCH in the calling thread (and so in every thread
    /// it starts from now on), resets their handlers (an ignored signal never reaches a
    /// signalfd) and ignores SIGPIPE. Returns a signalfd that reads them.
    static func take() throws(RuntimeError) -> FileDescriptor {
        var set = sigset_t()
        sigemptyset(&set)
        for number in forwarded + [SIGWINCH] {
            sigaddset(&set, number)
        }
        pthread_sigmask(SIG_BLOCK, &set, nil)
        for number in forwarded + [SIGWINCH] { signal(number, SIG_DFL) }
        signal(SIGPIPE, SIG_IGN)
        do {
            return FileDescriptor(try sys("signalfd") { signalfd(-1, &set, Int32(SFD_CLOEXEC | SFD_NONBLOCK)) })
        } catch {
            throw .step("take the signals the relay forwards", error)
        }
    }

    /// The next pending signal's number, nil when none is pending.
    static func next(_ fd: FileDescriptor) -> Int32? {
        var info = signalfd_siginfo()
        // SAFETY: reads one signalfd_siginfo into the local struct, at most its size.
        let got = withUnsafeMutableBytes(of: &info) { read(fd.raw, $0.baseAddress, $0.count) }
        guard got == MemoryLayout<signalfd_siginfo>.size else { return nil }
        return Int32(bitPattern: info.ssi_signo)
    }
}
