#if canImport(Glibc)
import Glibc
#endif
import Agent
import CAgent
import Harness
import Testing

/// Shared pieces of the agent tests on this host: a reaper that only reaps what it spawned
/// (the test process has other children), a busybox root file system, pipes.
enum AgentTest {
    static let reaper: Reaper = try! Reaper(mode: .registered)

    static let busybox = "/bin/busybox"

    /// The agent binary `swift build` made.
    static var agentBinary: String {
        var path = #filePath
        for _ in 0..<3 { path = String(path[..<path.lastIndex(of: "/")!]) }
        return path + "/.build/debug/kvmrun-agent"
    }
    static var agentBinaryExists: Bool { access(agentBinary, X_OK) == 0 }
    static var isRoot: Bool { getuid() == 0 }

    /// .build/agent-tests of the worktree (not /tmp: the nested host hides it), without the
    /// directories of earlier test processes that are gone.
    static let testsDirectory: String = {
        var path = #filePath
        for _ in 0..<3 { path = String(path[..<path.lastIndex(of: "/")!]) }
        let directory = path + "/.build/agent-tests"
        for name in Files.list(directory) ?? [] {
            guard let pid = Int32(name.prefix { $0 != "-" }), pid != getpid(), kill(pid, 0) != 0 else { continue }
            if let child = try? ChildProcess(executable: "/bin/rm", arguments: ["-rf", directory + "/" + name]) {
                _ = child.waitForExit(timeoutMilliseconds: 30_000)
            }
        }
        // And the (empty) cgroups earlier test processes left on the host's cgroup v2 hierarchy.
        for root in ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"] {
            for name in Files.list(root) ?? [] where name.hasPrefix("kvmrun-test-") {
                guard let pid = Int32(name.dropFirst(12).prefix { $0 != "-" }), pid != getpid(), kill(pid, 0) != 0 else { continue }
                for child in Files.list(root + "/" + name) ?? [] where Files.isDirectory(root + "/" + name + "/" + child) {
                    rmdir(root + "/" + name + "/" + child)
                }
                rmdir(root + "/" + name)
            }
        }
        return directory
    }()

    /// A fresh directory for one test.
    static func temporaryDirectory(_ name: String) -> String {
        let directory = "\(testsDirectory)/\(getpid())-\(name)"
        _ = try? Files.makeDirectories(directory)
        return directory
    }

    /// A busybox root file system: /bin/busybox, applet links, /etc/passwd and /etc/group
    /// with root and a user "app" (1000:1000, also in group "extra" 2000), empty /proc /dev /sys /tmp.
    static func makeRootfs(_ name: String) -> String {
        let root = temporaryDirectory(name) + "/rootfs"
        for directory in ["bin", "etc", "proc", "dev", "sys", "tmp", "home/app"] {
            try! Files.makeDirectories(root + "/" + directory)
        }
        let bytes = Files.read(busybox, limit: 64 << 20)!
        try! Files.create(root + "/bin/busybox", bytes, mode: 0o755)
        for applet in ["sh", "echo", "cat", "ls", "ps", "id", "hostname", "sleep", "tty", "stty", "touch", "grep", "true", "false", "mount", "head", "readlink", "pwd", "env", "wc", "tr", "dd", "kill", "cut"] {
            _ = symlink("busybox", root + "/bin/" + applet)
        }
        try! Files.create(root + "/etc/passwd", Array("root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n".utf8))
        try! Files.create(root + "/etc/group", Array("root:x:0:\napp:x:1000:\nextra:x:2000:app\n".utf8))
        return root
    }
}

/// An exit sink that remembers the status.
final class ExitBox: ExitSink, @unchecked Sendable {
    private let monitor = Monitor()
    private var status: WaitStatus?

    func exited(_ status: WaitStatus) {
        monitor.withLock {
            self.status = status
            monitor.broadcast()
        }
    }

    func wait(timeoutMilliseconds: Int = 10_000) -> WaitStatus? {
        monitor.withLock {
            _ = monitor.wait(timeoutMilliseconds: timeoutMilliseconds) { status != nil }
            return status
        }
    }
}

/// A pipe; `read` and `write` ends close-on-exec.
struct Pipe {
    let read: Int32
    let write: Int32
    init() {
        var fds: [Int32] = [-1, -1]
        precondition(kvmrun_pipe2(&fds, O_CLOEXEC) == 0)
        read = fds[0]
        write = fds[1]
    }

    /// Reads to end-of-file (or until `timeoutMilliseconds` of silence).
    static func drain(_ fd: Int32, timeoutMilliseconds: Int32 = 10_000) -> String {
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            var poll = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard Glibc.poll(&poll, 1, timeoutMilliseconds) > 0 else { break }
            // SAFETY: reads at most buffer.count bytes into the local buffer.
            let count = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count <= 0 { break }
            bytes += buffer[0..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// Runs a request to completion: its stdout and stderr (pipes unless the request has a
/// terminal) and exit status.
struct SpawnRun {
    var stdout = ""
    var stderr = ""
    var status: WaitStatus?

    static func run(_ build: (inout SpawnRequest) -> Void, args: [String]) throws -> SpawnRun {
        let input = Pipe(), output = Pipe(), errors = Pipe()
        var request = SpawnRequest(args: args, stdio: .fds(stdin: input.read, stdout: output.write, stderr: errors.write))
        request.env = ["PATH=/bin:/usr/bin"]
        build(&request)
        let box = ExitBox()
        let pending = try AgentTest.reaper.launching(box) { () throws(SpawnError) in
            let pending = try Spawner.launch(request)
            return (pending.pid, pending.pidfd, pending)
        }
        close(input.read)
        close(output.write)
        close(errors.write)
        close(input.write)
        defer {
            close(output.read)
            close(errors.read)
            // The reaper watches the pidfd until the process is reaped: close it only then (a
            // process that failed and was left a zombie would also keep its PID namespace's
            // init from ever finishing its exit).
            _ = box.wait()
            if pending.pidfd >= 0 { close(pending.pidfd) }
        }
        _ = try pending.finish()
        var result = SpawnRun()
        result.stdout = Pipe.drain(output.read)
        result.stderr = Pipe.drain(errors.read)
        result.status = box.wait()
        return result
    }
}
