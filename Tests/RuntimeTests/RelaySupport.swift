// A relay started the way `kvmrun create` starts it (ProcessRelay.spawn → `kvmrun relay`), with
// pipes as its stdio so a test can feed it and read what it relays; and a console socket.
#if canImport(Glibc)
import Glibc
#endif
import CRuntime
import Runtime
import Sys

final class RelayChild {
    let pid: pid_t
    private var stdinFD: Int32
    private var outputFDs: [Int32]
    private(set) var stdout: [UInt8] = []
    private(set) var stderr: [UInt8] = []
    private(set) var status: Int32?

    init(_ config: RelayConfig) throws {
        let input = Self.pipe(), output = Self.pipe(), errors = Self.pipe()
        defer {
            close(input.read)
            close(output.write)
            close(errors.write)
        }
        do {
            pid = try ProcessRelay.spawn(config, executable: RuntimeTest.kvmrunBinary, timeoutSeconds: 10,
                                         stdio: RelayStdio(stdin: input.read, stdout: output.write, stderr: errors.write))
        } catch {
            for fd in [input.write, output.read, errors.read] { close(fd) }
            throw error
        }
        stdinFD = input.write
        outputFDs = [output.read, errors.read]
    }

    deinit {
        if status == nil {
            kill(pid, SIGKILL)
            _ = finish(timeoutMilliseconds: 5000)
        }
        closeStdin()
        for fd in outputFDs where fd >= 0 { close(fd) }
    }

    var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
    var stderrText: String { String(decoding: stderr, as: UTF8.self) }

    func write(_ text: String) {
        let bytes = Array(text.utf8)
        precondition(Glibc.write(stdinFD, bytes, bytes.count) == bytes.count)
    }

    func closeStdin() {
        if stdinFD >= 0 { close(stdinFD) }
        stdinFD = -1
    }

    /// Reads the relay's output until it has exited and both pipes are at end-of-file; its
    /// exit status (nil if it is still running after the timeout).
    func finish(timeoutMilliseconds: Int = 20_000) -> Int32? {
        let deadline = MonotonicClock.deadline(after: .milliseconds(timeoutMilliseconds))
        while status == nil || outputFDs.contains(where: { $0 >= 0 }) {
            pump(milliseconds: 20)
            if status == nil {
                var raw: Int32 = 0
                if waitpid(pid, &raw, WNOHANG) == pid {
                    status = raw & 0x7F == 0 ? (raw >> 8) & 0xFF : 128 + (raw & 0x7F)
                }
            }
            if MonotonicClock.now >= deadline { break }
        }
        return status
    }

    /// Output until `text` appears in stdout (or the timeout).
    func waitForStdout(_ text: String, timeoutMilliseconds: Int = 10_000) -> Bool {
        let deadline = MonotonicClock.deadline(after: .milliseconds(timeoutMilliseconds))
        while !stdoutText.contains(text) {
            if MonotonicClock.now >= deadline { return false }
            pump(milliseconds: 20)
        }
        return true
    }

    private func pump(milliseconds: Int32) {
        var entries = outputFDs.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
        guard poll(&entries, 2, milliseconds) > 0 else { return }
        for index in 0..<2 where entries[index].revents != 0 {
            var chunk = [UInt8](repeating: 0, count: 4096)
            let count = read(outputFDs[index], &chunk, chunk.count)
            if count > 0 {
                if index == 0 { stdout += chunk[0..<count] } else { stderr += chunk[0..<count] }
            } else {
                close(outputFDs[index])
                outputFDs[index] = -1
            }
        }
    }

    static func pipe() -> (read: Int32, write: Int32) {
        var fds: [Int32] = [-1, -1]
        precondition(kvmrun_rt_pipe2(&fds, O_CLOEXEC) == 0)
        return (fds[0], fds[1])
    }
}

/// runc's --console-socket, as conmon serves it: a listening Unix socket that receives the pty
/// master.
final class ConsoleSocket {
    let path: String
    let listener: Int32

    init(path: String) throws {
        self.path = path
        unlink(path)
        listener = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        precondition(listener >= 0)
        let bound = try withUnixAddress(path) { address, length in bind(listener, address, length) }
        precondition(bound == 0 && listen(listener, 4) == 0, "bind \(path): errno \(errno)")
    }

    deinit {
        close(listener)
        unlink(path)
    }

    /// Accepts one connection and receives the descriptor it carries.
    func receiveMaster() -> Int32 {
        let connection = accept(listener, nil, nil)
        guard connection >= 0 else { return -1 }
        defer { close(connection) }
        return kvmrun_recv_fd(connection)
    }
}

/// Reads a pty master until `text` has appeared (or end-of-file, EIO, the timeout).
func readTerminal(_ fd: Int32, until text: String, timeoutMilliseconds: Int32 = 10_000) -> String {
    var bytes: [UInt8] = []
    while !String(decoding: bytes, as: UTF8.self).contains(text) {
        var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&entry, 1, timeoutMilliseconds) > 0 else { break }
        var chunk = [UInt8](repeating: 0, count: 4096)
        let count = read(fd, &chunk, chunk.count)
        if count <= 0 { break }
        bytes += chunk[0..<count]
    }
    return String(decoding: bytes, as: UTF8.self)
}
