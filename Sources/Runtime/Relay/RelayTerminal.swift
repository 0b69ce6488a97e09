// The host side of a process's terminal, as runc makes it: a pty pair whose master goes to the
// engine over the console socket (SCM_RIGHTS, the message's bytes the master's name) and whose
// slave the relay keeps as its controlling terminal, so the engine's resizes of the master
// reach the relay as SIGWINCH. The slave is raw: the line discipline that echoes and turns ^C
// into SIGINT is the guest pty's, inside the microVM.
#if canImport(Glibc)
import Glibc
#endif
import CRuntime
import Sys

struct RelayTerminal {
    /// The slave end: the relay reads the engine's input from it and writes the output to it.
    let slave: FileDescriptor

    /// Opens the pair, makes the slave the controlling terminal of a new session of this
    /// process, sends the master to `consoleSocket`, closes this process's copy of it and puts
    /// the slave on fds 0, 1 and 2.
    static func open(consoleSocket: String, rows: UInt16, columns: UInt16) throws(RuntimeError) -> RelayTerminal {
        var master: Int32 = -1, slave: Int32 = -1
        guard kvmrun_open_pty(&master, &slave, rows, columns) == 0 else {
            throw .failed(step: "open a pty", reason: SystemError(call: "posix_openpt, grantpt, unlockpt, open the slave", errno: errno).description)
        }
        let masterFD = FileDescriptor(master)
        let terminal = RelayTerminal(slave: FileDescriptor(slave))
        defer { masterFD.close() }
        // setsid fails (EPERM) in a process group leader, which a spawned relay never is.
        if setsid() < 0 {
            throw .failed(step: "setsid for the pty's session", reason: SystemError(call: "setsid", errno: errno).description)
        }
        if kvmrun_set_controlling_tty(slave) != 0 {
            throw .failed(step: "make the pty the relay's controlling terminal", reason: SystemError(call: "TIOCSCTTY", errno: errno).description)
        }
        try send(master: master, to: consoleSocket)
        // As runc's container process, the relay's stdio is the slave from here on: it keeps none
        // of the descriptors the engine gave the runtime (an engine may wait for those to close),
        // and what it has to say reaches the terminal.
        for fd in [STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO] where dup2(slave, fd) < 0 {
            throw .failed(step: "make the pty the relay's stdio", reason: SystemError(call: "dup2 \(fd)", errno: errno).description)
        }
        return terminal
    }

    private static func send(master: Int32, to path: String) throws(RuntimeError) {
        let step = "send the pty master to the console socket \(path)"
        do {
            let socket = try StreamSocket.connectUnix(path)
            defer { socket.close() }
            // runc sends its master as a file named /dev/ptmx (the name is the message).
            if kvmrun_send_fd(socket.raw, master, "/dev/ptmx") != 0 {
                throw SystemError(call: "sendmsg SCM_RIGHTS", errno: errno)
            }
        } catch {
            throw .failed(step: step, reason: "\(error)")
        }
    }

    /// The slave's window size, nil while unset (0 x 0) or unreadable.
    func windowSize() -> (rows: UInt16, columns: UInt16)? {
        var rows: UInt16 = 0, columns: UInt16 = 0
        guard kvmrun_rt_window_size(slave.raw, &rows, &columns) == 0, rows > 0, columns > 0 else { return nil }
        return (rows, columns)
    }
}
