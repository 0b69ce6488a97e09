// A process's stdio as the agent holds it: the parent ends of its pipes, or its pty master.
// Reads block until data, end-of-file or cancellation (ReadStdout/ReadStderr block like
// Kata's); writes block while the pipe is full.
//
// Bound: the agent keeps no copy of a process's output. The pipe (64 KiB) or the pty buffer
// is the buffer; when it is full, the process blocks in write until the host reads
// (backpressure, nothing dropped). A read returns at most `maxRead` bytes.
#if canImport(Glibc)
import Glibc
#endif
import CAgent
import Sys

/// The largest read a ReadStdout/ReadStderr may ask for (the request's `len` is capped).
public let maxRead = 1 << 20

/// An eventfd that, once fired, stays readable: process exit, stream cancellation.
public final class Event: @unchecked Sendable {
    public let fd: Int32

    public init() throws(SystemError) {
        fd = try sys("eventfd") { eventfd(0, Int32(EFD_CLOEXEC | EFD_NONBLOCK)) }
    }

    deinit { close(fd) }

    public func fire() {
        var one: UInt64 = 1
        // SAFETY: writes the 8-byte counter increment eventfd expects.
        _ = withUnsafeBytes(of: &one) { write(fd, $0.baseAddress, 8) }
    }

    public var fired: Bool {
        var poll = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return Glibc.poll(&poll, 1, 0) > 0
    }
}

public final class OutputStream: @unchecked Sendable {
    private let fd: Int32
    private let cancelled: Event
    private let readers = Monitor()
    private var reading = false
    /// After the process exits, how long a read waits for more data before calling it the
    /// end (a background child may still hold the pipe's write end).
    static let drainMilliseconds: Int32 = 500

    /// Takes ownership of `fd`.
    public init(fd: Int32) throws(SystemError) {
        self.fd = fd
        cancelled = try Event()
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
    }

    deinit { close(fd) }

    /// Wakes readers for good: they return end-of-file.
    public func cancel() { cancelled.fire() }

    /// Up to `count` bytes; [] at end-of-file. `exit` is the process's exit event; a
    /// readable `cancellation` fd (the caller's connection closed) ends the read too.
    public func read(count: Int, exit: Event, cancellation: Int32 = -1) -> [UInt8] {
        // One reader at a time: a second ReadStdout waits for the first.
        readers.withLock {
            _ = readers.wait { !reading }
            reading = true
        }
        defer {
            readers.withLock {
                reading = false
                readers.broadcast()
            }
        }
        var buffer = [UInt8](repeating: 0, count: max(1, min(count, maxRead)))
        var exitSeen = false
        while true {
            if cancelled.fired { return [] }
            // SAFETY: reads into the local buffer, at most its size.
            let got = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if got > 0 { return Array(buffer[0..<got]) }
            if got == 0 { return [] }
            switch errno {
            case EINTR: continue
            case EAGAIN: break
            default: return []   // EIO: the pty's slave side is closed for good
            }
            var polls = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0),
                         pollfd(fd: cancelled.fd, events: Int16(POLLIN), revents: 0),
                         pollfd(fd: cancellation, events: Int16(POLLIN), revents: 0),
                         pollfd(fd: exit.fd, events: Int16(POLLIN), revents: 0)]
            let ready = Glibc.poll(&polls, exitSeen ? 3 : 4, exitSeen ? Self.drainMilliseconds : -1)
            if ready == 0 { return [] }   // exited, and nothing more came within the drain time
            if polls[2].revents != 0 { return [] }
            if !exitSeen, polls[3].revents != 0 { exitSeen = true }
        }
    }
}

public final class InputStream: @unchecked Sendable {
    private let fd: Int32
    private let cancelled: Event
    private let writers = Monitor()
    private var isClosed = false
    /// For a pty: "closing" stdin sends the EOF character instead of closing the master.
    private let terminal: Bool

    /// Takes ownership of `fd`.
    public init(fd: Int32, terminal: Bool) throws(SystemError) {
        self.fd = fd
        self.terminal = terminal
        cancelled = try Event()
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
    }

    deinit { Glibc.close(fd) }

    /// Writes all of `bytes` (blocking while the pipe is full). Throws once stdin is closed
    /// or the process is gone.
    public func write(_ bytes: [UInt8]) throws(AgentError) -> Int {
        try writers.withLock { () throws(AgentError) -> Int in
            guard !isClosed else { throw AgentError(.failedPrecondition, "stdin is closed") }
            var offset = 0
            while offset < bytes.count {
                // SAFETY: writes within the array's bounds.
                let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + offset, $0.count - offset) }
                if written > 0 {
                    offset += written
                    continue
                }
                switch errno {
                case EINTR: continue
                case EAGAIN:
                    var polls = [pollfd(fd: fd, events: Int16(POLLOUT), revents: 0), pollfd(fd: cancelled.fd, events: Int16(POLLIN), revents: 0)]
                    _ = Glibc.poll(&polls, 2, -1)
                    if polls[1].revents != 0 { throw AgentError(.failedPrecondition, "stdin is closed") }
                case EPIPE, EIO: throw AgentError(.failedPrecondition, "stdin: the process no longer reads it (\(errno == EPIPE ? "EPIPE" : "EIO"))")
                default: throw AgentError(SystemError(call: "write stdin", errno: errno), while: "WriteStdin")
                }
            }
            return offset
        }
    }

    /// TtyWinResize: TIOCSWINSZ on the pty master (the process gets SIGWINCH).
    public func resize(rows: UInt16, columns: UInt16) throws(AgentError) {
        guard terminal else { throw AgentError(.unavailable, "no tty: the process was started without a terminal") }
        if kvmrun_set_window_size(fd, rows, columns) != 0 {
            throw AgentError(SystemError(call: "TIOCSWINSZ", errno: errno), while: "TtyWinResize")
        }
    }

    /// CloseStdin: the process reads end-of-file. A pipe is closed; a pty gets its EOF
    /// character (^D, which a reader in canonical mode takes as end-of-file).
    public func close() {
        cancelled.fire()
        writers.withLock {
            guard !isClosed else { return }
            isClosed = true
            if terminal {
                var eot: UInt8 = 4
                _ = Glibc.write(fd, &eot, 1)
            } else {
                _ = shutdownPipe()
            }
        }
    }

    /// The write end of a pipe cannot be half-closed: replace it with /dev/null so the reader
    /// sees end-of-file while our fd number stays valid until deinit.
    private func shutdownPipe() -> Bool {
        let null = open("/dev/null", O_WRONLY | O_CLOEXEC)
        guard null >= 0 else { return false }
        defer { Glibc.close(null) }
        return dup2(null, fd) >= 0 && fcntl(fd, F_SETFD, FD_CLOEXEC) == 0
    }
}
