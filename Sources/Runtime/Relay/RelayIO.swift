// The relay's descriptor plumbing: a stop event every blocking wait also watches, reads and
// writes that give up when it fires, the threads it joins, the exit file.
#if canImport(Glibc)
import Glibc
#endif
import CRuntime
import Sys

/// An eventfd that, once fired, stays readable: "stop now" for every thread of the relay.
final class RelayEvent: Sendable {
    let fd: FileDescriptor

    init(_ what: String) throws(RuntimeError) {
        do {
            fd = FileDescriptor(try sys("eventfd for \(what)") { eventfd(0, Int32(EFD_CLOEXEC | EFD_NONBLOCK)) })
        } catch {
            throw .failed(step: "set up the relay", reason: error.description)
        }
    }

    func fire() { fd.signalEvent() }

    var fired: Bool {
        var entry = pollfd(fd: fd.raw, events: Int16(POLLIN), revents: 0)
        return poll(&entry, 1, 0) > 0
    }
}

enum RelayIO {
    /// PIPE_BUF: a write this small to a pipe that polled writable does not block.
    static let writeChunk = 4096

    /// Waits until `fd` is readable (or hung up, or invalid); false when `stop` fired first.
    static func waitReadable(_ fd: Int32, stop: RelayEvent) -> Bool {
        wait(fd, events: Int16(POLLIN), stop: stop)
    }

    private static func wait(_ fd: Int32, events: Int16, stop: RelayEvent) -> Bool {
        var entries = [pollfd(fd: fd, events: events, revents: 0), pollfd(fd: stop.fd.raw, events: Int16(POLLIN), revents: 0)]
        while true {
            let ready = poll(&entries, 2, -1)
            if ready < 0 {
                if errno == EINTR { continue }
                return false
            }
            if entries[1].revents != 0 { return false }
            if entries[0].revents != 0 { return true }
        }
    }

    /// One read of at most `count` bytes once `fd` is readable; nil at end-of-file, on an error
    /// (EIO: a pty whose other side is gone) or when `stop` fired.
    static func read(_ fd: Int32, count: Int, stop: RelayEvent) -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: count)
        while true {
            guard waitReadable(fd, stop: stop) else { return nil }
            // SAFETY: reads at most buffer.count bytes into the local buffer.
            let got = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if got > 0 { return Array(buffer[0..<got]) }
            if got < 0, errno == EINTR || errno == EAGAIN { continue }
            return nil
        }
    }

    /// Writes all of `bytes` to `fd`, a chunk of at most PIPE_BUF each time it polls writable,
    /// so a reader that stopped reading blocks us only until `stop` fires. False when the fd is
    /// broken (EPIPE, EIO: the engine closed its end) or on stop.
    static func writeAll(_ fd: Int32, _ bytes: [UInt8], stop: RelayEvent) -> Bool {
        var offset = 0
        while offset < bytes.count {
            guard wait(fd, events: Int16(POLLOUT), stop: stop) else { return false }
            let length = min(writeChunk, bytes.count - offset)
            let start = offset
            // SAFETY: writes from inside `bytes`: start < count, length ≤ what is left.
            let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + start, length) }
            if written > 0 {
                offset += written
            } else if written < 0, errno == EINTR || errno == EAGAIN {
                continue
            } else {
                return false
            }
        }
        return true
    }

    /// Writes all of `bytes` with blocking write(2)s (a pipe or a terminal: messages, the ready
    /// answer); gives up silently on an error.
    static func writeBlocking(_ fd: Int32, _ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let start = offset
            // SAFETY: writes from inside `bytes`: start < count, the length is what is left.
            let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + start, $0.count - start) }
            if written > 0 {
                offset += written
            } else if written < 0, errno == EINTR {
                continue
            } else {
                return
            }
        }
    }

    /// Writes `text` to the file at `path` atomically: a temporary file beside it, fsync,
    /// rename, fsync of the directory.
    static func writeAtomically(_ text: String, to path: String) throws(SystemError) {
        let temporary = "\(path).tmp-\(getpid())"
        let fd = try sys("open \(temporary)") { open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644) }
        let bytes = Array(text.utf8)
        var failure: SystemError?
        var offset = 0
        while offset < bytes.count, failure == nil {
            let start = offset
            do {
                // SAFETY: writes from inside `bytes`: start < count, the length is what is left.
                offset += try sys("write \(temporary)") { bytes.withUnsafeBytes { write(fd, $0.baseAddress! + start, $0.count - start) } }
            } catch { failure = error }
        }
        if failure == nil, fsync(fd) != 0 { failure = SystemError(call: "fsync \(temporary)", errno: errno) }
        close(fd)
        if failure == nil, rename(temporary, path) != 0 { failure = SystemError(call: "rename \(temporary) to \(path)", errno: errno) }
        if let failure {
            unlink(temporary)
            throw failure
        }
        let directory = path.lastIndex(of: "/").map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? "."
        let directoryFD = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directoryFD >= 0 {
            fsync(directoryFD)
            close(directoryFD)
        }
    }
}

/// The relay's threads, counted so the relay can wait for them before it returns.
final class RelayThreads: @unchecked Sendable {
    private let parking = Parking()
    private var running = 0  // guarded by `parking`

    func start(_ name: String, _ body: @escaping @Sendable () -> Void) throws(RuntimeError) {
        parking.withLock { _ in running += 1 }
        do {
            try startThread("relay \(name)") { [self] in
                body()
                parking.withLock { _ in running -= 1 }
                parking.wakeAll()
            }
        } catch {
            parking.withLock { _ in running -= 1 }
            throw .step("start the relay's \(name) thread", error)
        }
    }

    /// Waits until every thread has returned, at most until `deadline` (nil: no limit); false
    /// on timeout.
    func join(deadline: Int64?) -> Bool {
        parking.withLock(deadline: deadline) { wait in
            while running > 0 { if !wait() { return false } }
            return true
        }
    }
}
