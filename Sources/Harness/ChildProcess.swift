#if canImport(Glibc)
import Glibc
#endif
import CKVM
import Sys

/// A child process with its stdout and stderr on pipes, for benchmarks and end-to-end tests: spawned with
/// posix_spawn, read line by line with timestamps, stopped and reaped.
public final class ChildProcess {
    public let pid: pid_t
    public let spawnedAt: UInt64
    private var stdoutFD: Int32
    private var stderrFD: Int32
    private var buffers: [[UInt8]] = [[], []]
    public private(set) var stdoutText: [UInt8] = []
    public private(set) var stderrText: [UInt8] = []
    private var exitStatus: Int32?

    public init(executable: String, arguments: [String]) throws(SystemError) {
        var outPipe: [Int32] = [0, 0], errPipe: [Int32] = [0, 0]
        try sys("pipe") { pipe(&outPipe) }
        try sys("pipe") { pipe(&errPipe) }
        for fd in outPipe + errPipe { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, outPipe[1], STDOUT_FILENO)
        posix_spawn_file_actions_adddup2(&actions, errPipe[1], STDERR_FILENO)
        posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0)
        // The child starts with no signal blocked and default dispositions, as from a shell, not
        // with the mask of whichever (possibly worker) thread spawned it.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t(), all = sigset_t()
        sigemptyset(&empty)
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var child: pid_t = 0
        let start = kvmrun_monotonic_ns()
        let result = posix_spawn(&child, executable, &actions, &attributes, argv, environ)
        close(outPipe[1])
        close(errPipe[1])
        guard result == 0 else {
            close(outPipe[0])
            close(errPipe[0])
            throw SystemError(call: "posix_spawn \(executable)", errno: result)
        }
        pid = child
        spawnedAt = start
        stdoutFD = outPipe[0]
        stderrFD = errPipe[0]
    }

    deinit {
        if exitStatus == nil { kill(pid, SIGKILL); _ = waitForExit(timeoutMilliseconds: 5000) }
        if stdoutFD >= 0 { close(stdoutFD) }
        if stderrFD >= 0 { close(stderrFD) }
    }

    /// Reads output until a stdout line contains `marker`; returns the monotonic time at which
    /// that line arrived, or nil on timeout or end of output.
    public func waitForStdout(containing marker: String, timeoutMilliseconds: Int) -> UInt64? {
        let needle = Array(marker.utf8)
        let deadline = kvmrun_monotonic_ns() + UInt64(timeoutMilliseconds) * 1_000_000
        var searchedUpTo = 0
        while true {
            if let found = firstRange(of: needle, in: stdoutText, from: max(0, searchedUpTo - needle.count)) {
                _ = found
                return lastReadAt
            }
            searchedUpTo = stdoutText.count
            let now = kvmrun_monotonic_ns()
            guard now < deadline, pump(timeoutMilliseconds: Int32((deadline - now) / 1_000_000) + 1) else { return nil }
        }
    }

    private var lastReadAt: UInt64 = 0

    /// Waits for output on either pipe and appends it. False when both pipes are closed.
    private func pump(timeoutMilliseconds: Int32) -> Bool {
        var fds = [pollfd(fd: stdoutFD, events: Int16(POLLIN), revents: 0),
                   pollfd(fd: stderrFD, events: Int16(POLLIN), revents: 0)]
        let ready = poll(&fds, 2, timeoutMilliseconds)
        if ready < 0 { return errno == EINTR }
        if ready == 0 { return true }
        var open = false
        for (index, entry) in fds.enumerated() where entry.fd >= 0 {
            if entry.revents == 0 { open = true; continue }
            var chunk = [UInt8](repeating: 0, count: 4096)
            let count = read(entry.fd, &chunk, chunk.count)
            if count > 0 {
                lastReadAt = kvmrun_monotonic_ns()
                if index == 0 { stdoutText += chunk[0..<count] } else { stderrText += chunk[0..<count] }
                open = true
            } else {
                close(entry.fd)
                if index == 0 { stdoutFD = -1 } else { stderrFD = -1 }
            }
        }
        return open || stdoutFD >= 0 || stderrFD >= 0
    }

    /// Reads remaining output until both pipes close or the timeout passes.
    public func drain(timeoutMilliseconds: Int) {
        let deadline = kvmrun_monotonic_ns() + UInt64(timeoutMilliseconds) * 1_000_000
        while stdoutFD >= 0 || stderrFD >= 0 {
            let now = kvmrun_monotonic_ns()
            guard now < deadline, pump(timeoutMilliseconds: 50) else { return }
        }
    }

    /// Sends `signal` to the child, unless it was already reaped (its pid may be reused).
    public func signal(_ number: Int32) {
        guard exitStatus == nil else { return }
        kill(pid, number)
    }

    /// Reaps the child; nil on timeout. The status is the exit code, or 128 + signal.
    public func waitForExit(timeoutMilliseconds: Int) -> Int32? {
        if let exitStatus { return exitStatus }
        let deadline = kvmrun_monotonic_ns() + UInt64(timeoutMilliseconds) * 1_000_000
        while true {
            var status: Int32 = 0
            let result = waitpid(pid, &status, WNOHANG)
            if result == pid {
                let code = status & 0x7F == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
                exitStatus = code
                return code
            }
            if result < 0 && errno != EINTR { exitStatus = -1; return -1 }
            if kvmrun_monotonic_ns() >= deadline { return nil }
            if stdoutFD >= 0 || stderrFD >= 0 { _ = pump(timeoutMilliseconds: 10) } else { usleep(5000) }
        }
    }
}

public func firstRange(of needle: [UInt8], in haystack: [UInt8], from start: Int) -> Int? {
    guard !needle.isEmpty, haystack.count >= needle.count else { return nil }
    var index = start
    while index + needle.count <= haystack.count {
        if haystack[index] == needle[0] && Array(haystack[index..<(index + needle.count)]) == needle { return index }
        index += 1
    }
    return nil
}
