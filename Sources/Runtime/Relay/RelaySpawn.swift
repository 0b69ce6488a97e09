// Starting a relay from `kvmrun create`/`kvmrun exec`: `kvmrun relay --config-fd 3 --ready-fd 4`
// as a child (so when the runtime exits it is re-parented to the engine's subreaper, conmon),
// with the stdio the engine gave us, the configuration on a pipe at fd 3 and the relay's
// "ok" or "error: REASON" coming back on a pipe at fd 4.
#if canImport(Glibc)
import Glibc
#endif
import CRuntime
import Sys

/// The descriptors a spawned relay gets as its 0, 1 and 2.
public struct RelayStdio: Sendable {
    public var stdin: Int32
    public var stdout: Int32
    public var stderr: Int32
    public init(stdin: Int32, stdout: Int32, stderr: Int32) {
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr
    }
}

extension ProcessRelay {
    /// Starts `kvmrun relay` as a child of this process with its stdio = this process's stdio
    /// (or `stdio`), the configuration passed on a pipe, and waits until the relay reported
    /// ready (at most `timeoutSeconds`; the relay's own words if it failed). Returns the
    /// relay's pid. `executable` is the kvmrun binary (/proc/self/exe). The relay gets no other
    /// descriptor of ours, an empty signal mask and default signal actions.
    public static func spawn(_ config: RelayConfig, executable: String, timeoutSeconds: Int,
                             stdio: RelayStdio? = nil) throws(RuntimeError) -> pid_t {
        try config.validate()
        let step = "start the relay for \(config.subject)"
        // The configuration fits a pipe's buffer: written whole before the relay exists.
        let configuration = try config.encoded()
        guard configuration.count < 60_000 else { throw .invalidInput("\(step): the configuration is \(configuration.count) bytes") }
        let configPipe = try pipe(step)
        RelayIO.writeBlocking(configPipe.write.raw, configuration)
        configPipe.write.close()
        let readyPipe = try pipe(step)
        let child = try launch(executable, configFD: configPipe.read, readyFD: readyPipe.write, stdio: stdio, step: step)
        configPipe.read.close()
        readyPipe.write.close()
        let deadline = MonotonicClock.deadline(after: .seconds(timeoutSeconds))
        let answer = readAnswer(readyPipe.read.raw, deadline: deadline)
        if answer == "ok" { return child }
        if answer == nil { kill(child, SIGKILL) }
        let status = reap(child, deadline: MonotonicClock.deadline(after: .seconds(5)))
        switch answer {
        case nil:
            throw .failed(step: step, reason: "no answer from the relay (pid \(child)) within \(timeoutSeconds) s; killed it")
        case let text? where text.hasPrefix("error: "):
            throw .failed(step: step, reason: String(text.dropFirst(7)))
        case let text?:
            let how = status.map { "exited with status \($0)" } ?? "did not exit"
            throw .failed(step: step, reason: "the relay (pid \(child)) \(how) before it was ready\(text.isEmpty ? "" : ": \(text)")")
        }
    }

    private static func pipe(_ step: String) throws(RuntimeError) -> (read: FileDescriptor, write: FileDescriptor) {
        var fds: [Int32] = [-1, -1]
        guard kvmrun_rt_pipe2(&fds, O_CLOEXEC) == 0 else {
            throw .failed(step: step, reason: SystemError(call: "pipe2", errno: errno).description)
        }
        return (FileDescriptor(fds[0]), FileDescriptor(fds[1]))
    }

    private static func launch(_ executable: String, configFD: FileDescriptor, readyFD: FileDescriptor,
                               stdio: RelayStdio?, step: String) throws(RuntimeError) -> pid_t {
        // Each source is first copied to 10 or above, so no dup2 below overwrites a source
        // another one still needs; the copies are close-on-exec, and closefrom(5) ends the rest.
        var targets: [(source: Int32, target: Int32)] = [(configFD.raw, 3), (readyFD.raw, 4)]
        if let stdio { targets += [(stdio.stdin, 0), (stdio.stdout, 1), (stdio.stderr, 2)] }
        var copies: [FileDescriptor] = []
        for (source, _) in targets {
            let copy = fcntl(source, F_DUPFD_CLOEXEC, 10)
            guard copy >= 0 else { throw .failed(step: step, reason: SystemError(call: "fcntl F_DUPFD_CLOEXEC \(source)", errno: errno).description) }
            copies.append(FileDescriptor(copy))
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for (index, target) in targets.enumerated() {
            posix_spawn_file_actions_adddup2(&actions, copies[index].raw, target.target)
        }
        kvmrun_spawn_add_closefrom(&actions, 5)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t(), all = sigset_t()
        sigemptyset(&empty)
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let arguments = [executable, "relay", "--config-fd", "3", "--ready-fd", "4"]
        let argv = arguments.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var child: pid_t = 0
        let result = posix_spawn(&child, executable, &actions, &attributes, argv, environ)
        guard result == 0 else {
            throw .failed(step: step, reason: SystemError(call: "posix_spawn \(executable)", errno: result).description)
        }
        return child
    }

    /// The relay's answer (one line, without its newline) once the pipe reaches end-of-file;
    /// nil when the deadline passed first.
    private static func readAnswer(_ fd: Int32, deadline: Int64) -> String? {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            guard (try? StreamSocket.waitReadable(fd, deadline: deadline)) == true else { return nil }
            guard let count = try? StreamSocket.receive(fd, into: &chunk, what: "the relay's ready pipe"), count > 0 else { break }
            bytes += chunk[0..<count]
            if bytes.count > 64 << 10 { break }
        }
        var text = String(decoding: bytes, as: UTF8.self)
        while text.last == "\n" { text.removeLast() }
        return text
    }

    /// Reaps `pid`: its exit status (128+N for signal N), nil if it has not exited by `deadline`.
    private static func reap(_ pid: pid_t, deadline: Int64) -> Int32? {
        while true {
            var status: Int32 = 0
            let result = waitpid(pid, &status, WNOHANG)
            if result == pid { return status & 0x7F == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F) }
            if result < 0, errno != EINTR { return nil }
            if MonotonicClock.now >= deadline { return nil }
            usleep(10_000)
        }
    }
}
