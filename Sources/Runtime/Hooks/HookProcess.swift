// One hook run on the host: posix_spawn with the state on stdin and stdout/stderr captured,
// waited for with a deadline, killed when it passes.
//
// stdin, stdout and stderr are unlinked temporary files, not pipes: writing the state never
// blocks (a hook need not read it), there is no SIGPIPE, and a hook that leaves a background
// child holding its stdout open cannot make the runtime wait for that child.
#if canImport(Glibc)
import Glibc
#endif
import CRuntime
import OCI
import Sys

struct HookProcess {
    /// How the hook ended.
    enum Outcome: Equatable {
        case exited(Int32)
        case signalled(Int32)
        case timedOut(seconds: Int)
        /// Reaped by someone else (a SIGCHLD handler calling waitpid(-1)): status unknown.
        case lost
    }

    /// At most this many bytes of each of stdout and stderr go into an error (the last ones).
    static let outputLimit = 4096

    let outcome: Outcome
    let stdout: String
    let stderr: String

    /// Runs `hook` to its end (or its timeout) with `input` on stdin. Throws only when the hook
    /// cannot be started (the error names the step and the path).
    /// `directory` is its working directory (the bundle, as runc's hooks have it).
    static func run(_ hook: Spec.Hook, input: [UInt8], directory: String? = nil) throws(SystemError) -> HookProcess {
        let stdin = try temporaryFile("state")
        try writeAll(stdin.raw, input)
        _ = lseek(stdin.raw, 0, SEEK_SET)
        let stdout = try temporaryFile("stdout")
        let stderr = try temporaryFile("stderr")

        let pid = try spawn(hook, stdin: stdin.raw, stdout: stdout.raw, stderr: stderr.raw, directory: directory)
        let outcome = wait(pid, timeout: hook.timeout)
        return HookProcess(outcome: outcome, stdout: tail(stdout.raw), stderr: tail(stderr.raw))
    }

    private static func spawn(_ hook: Spec.Hook, stdin: Int32, stdout: Int32, stderr: Int32,
                              directory: String?) throws(SystemError) -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        // The three files are ≥ 3 and close-on-exec; dup2 onto 0-2 clears that flag on the copies.
        posix_spawn_file_actions_adddup2(&actions, stdin, STDIN_FILENO)
        posix_spawn_file_actions_adddup2(&actions, stdout, STDOUT_FILENO)
        posix_spawn_file_actions_adddup2(&actions, stderr, STDERR_FILENO)
        if let directory { kvmrun_spawn_add_chdir(&actions, directory) }

        // No signal blocked, default dispositions (whatever the calling thread had), and a process
        // group of its own, so a timeout kills what the hook started too.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t(), all = sigset_t()
        sigemptyset(&empty)
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP))

        // args[0] is argv[0]; without args, argv is just the path (as execv callers do).
        let arguments = (hook.args?.isEmpty ?? true) ? [hook.path] : hook.args!
        let argv = arguments.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        // No env: the hook inherits the runtime's environment, as runc's hooks do.
        let envp: [UnsafeMutablePointer<CChar>?]? = hook.env.map { $0.map { strdup($0) } + [nil] }
        defer { for pointer in envp ?? [] { free(pointer) } }

        var pid: pid_t = 0
        let result = envp.map { envp in posix_spawn(&pid, hook.path, &actions, &attributes, argv, envp) }
            ?? posix_spawn(&pid, hook.path, &actions, &attributes, argv, environ)
        guard result == 0 else { throw SystemError(call: "posix_spawn \(hook.path)", errno: result) }
        return pid
    }

    /// Waits for `pid`; past `timeout` seconds kills its process group and reaps it.
    private static func wait(_ pid: pid_t, timeout: Int?) -> Outcome {
        let deadline = timeout.map { MonotonicClock.deadline(after: .seconds($0)) }
        var pause: UInt32 = 200  // µs, doubling to 10 ms: a quick hook is seen at once
        while true {
            var status: Int32 = 0
            let reaped = waitpid(pid, &status, deadline == nil ? 0 : WNOHANG)
            if reaped == pid { return decode(status) }
            if reaped < 0 {
                if errno == EINTR { continue }
                // ECHILD: someone else reaped it.
                return .lost
            }
            if let deadline, MonotonicClock.now >= deadline {
                kill(-pid, SIGKILL)
                kill(pid, SIGKILL)
                while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
                return .timedOut(seconds: timeout ?? 0)
            }
            usleep(pause)
            pause = min(pause * 2, 10_000)
        }
    }

    private static func decode(_ status: Int32) -> Outcome {
        // WIFEXITED / WEXITSTATUS / WTERMSIG, which do not import into Swift.
        let signal = status & 0x7f
        return signal == 0 ? .exited((status >> 8) & 0xff) : .signalled(signal)
    }

    /// An unlinked file in $TMPDIR (or /tmp), close-on-exec, at fd 3 or above.
    private static func temporaryFile(_ purpose: String) throws(SystemError) -> FileDescriptor {
        let directory = getenv("TMPDIR").map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
        var template = Array("\(directory)/kvmrun-hook-\(purpose)-XXXXXX".utf8CString)
        let fd = try sys("mkstemp \(directory)/kvmrun-hook-\(purpose)-XXXXXX") { mkstemp(&template) }
        unlink(template)
        defer { close(fd) }
        return FileDescriptor(try sys("fcntl F_DUPFD_CLOEXEC (hook \(purpose))") { fcntl(fd, F_DUPFD_CLOEXEC, 3) })
    }

    private static func writeAll(_ fd: Int32, _ bytes: [UInt8]) throws(SystemError) {
        var offset = 0
        while offset < bytes.count {
            // SAFETY: writes from inside the array: bytes.count - offset bytes starting at offset.
            let result = bytes.withUnsafeBytes { buffer in
                sysOnce("write hook state") { write(fd, buffer.baseAddress! + offset, buffer.count - offset) }
            }
            switch result {
            case .success(let written): offset += written
            case .failure(let error) where error.errno == EINTR: continue
            case .failure(let error): throw error
            }
        }
    }

    /// The last `outputLimit` bytes the hook wrote to `fd`, trimmed, "…" in front when cut.
    private static func tail(_ fd: Int32) -> String {
        let size = Int(lseek(fd, 0, SEEK_END))
        guard size > 0 else { return "" }
        let start = max(0, size - outputLimit)
        var bytes = [UInt8](repeating: 0, count: size - start)
        // SAFETY: reads into the local array, at most its size.
        let count = pread(fd, &bytes, bytes.count, off_t(start))
        guard count > 0 else { return "" }
        let text = String(decoding: bytes[0..<count], as: UTF8.self)
        guard let first = text.firstIndex(where: { !$0.isWhitespace }),
              let last = text.lastIndex(where: { !$0.isWhitespace }) else { return "" }
        let trimmed = String(text[first...last])
        return start > 0 ? "…" + trimmed : trimmed
    }
}
