// The real agent binary on a Unix socket, busybox root file systems and a few file helpers,
// for runtime tests that need a guest agent but no guest (as Tests/AgentTests does).
#if canImport(Glibc)
import Glibc
#endif
import AgentHost
import Harness
import Sys

enum RuntimeTest {
    /// The worktree: three levels above this file.
    static let packageRoot: String = {
        var path = #filePath
        for _ in 0..<3 { path = String(path[..<path.lastIndex(of: "/")!]) }
        return path
    }()

    static var agentBinary: String { packageRoot + "/.build/debug/kvmrun-agent" }
    static var kvmrunBinary: String { packageRoot + "/.build/debug/kvmrun" }
    static var binariesExist: Bool { access(agentBinary, X_OK) == 0 && access(kvmrunBinary, X_OK) == 0 }
    static var isRoot: Bool { getuid() == 0 }

    /// .build/runtime-tests of the worktree, without the directories of earlier test
    /// processes that are gone.
    static let testsDirectory: String = {
        let directory = packageRoot + "/.build/runtime-tests"
        makeDirectories(directory)
        for name in list(directory) {
            guard let pid = Int32(name.prefix { $0 != "-" }), pid != getpid(), kill(pid, 0) != 0 else { continue }
            if let child = try? ChildProcess(executable: "/bin/rm", arguments: ["-rf", directory + "/" + name]) {
                _ = child.waitForExit(timeoutMilliseconds: 30_000)
            }
        }
        return directory
    }()

    /// A fresh directory for one test (short: socket paths must fit sun_path).
    static func temporaryDirectory(_ name: String) -> String {
        let directory = "\(testsDirectory)/\(getpid())-\(name)"
        makeDirectories(directory)
        return directory
    }

    /// A busybox root file system: /bin/busybox and applet links, /etc/passwd and /etc/group,
    /// empty /proc /dev /sys /tmp.
    static func makeRootfs(_ name: String) -> String {
        let root = temporaryDirectory(name) + "/rootfs"
        for directory in ["bin", "etc", "proc", "dev", "sys", "tmp"] { makeDirectories(root + "/" + directory) }
        let busybox = readFile("/bin/busybox")
        writeFile(root + "/bin/busybox", busybox, mode: 0o755)
        for applet in ["sh", "echo", "cat", "sleep", "stty", "true", "false", "kill"] {
            _ = symlink("busybox", root + "/bin/" + applet)
        }
        writeFile(root + "/etc/passwd", Array("root:x:0:0:root:/root:/bin/sh\n".utf8))
        writeFile(root + "/etc/group", Array("root:x:0:\n".utf8))
        return root
    }

    static func makeDirectories(_ path: String) {
        var partial = ""
        for component in path.split(separator: "/") {
            partial += "/" + component
            mkdir(partial, 0o755)
        }
    }

    static func list(_ directory: String) -> [String] {
        guard let handle = opendir(directory) else { return [] }
        defer { closedir(handle) }
        var names: [String] = []
        while let entry = readdir(handle) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != ".", name != ".." { names.append(name) }
        }
        return names
    }

    static func readFile(_ path: String) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return [] }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = read(fd, &chunk, chunk.count)
            if count <= 0 { return bytes }
            bytes += chunk[0..<count]
        }
    }

    static func writeFile(_ path: String, _ bytes: [UInt8], mode: mode_t = 0o644) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        precondition(fd >= 0, "create \(path): errno \(errno)")
        defer { close(fd) }
        var offset = 0
        while offset < bytes.count {
            let start = offset
            // SAFETY: writes from inside `bytes`: start < count, the length is what is left.
            let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + start, $0.count - start) }
            precondition(written > 0, "write \(path): errno \(errno)")
            offset += written
        }
    }
}

/// The kvmrun-agent binary serving a Unix socket, without cgroups, ending with the test process.
final class TestAgent: @unchecked Sendable {
    let process: ChildProcess
    let socket: String
    let directory: String

    init(_ name: String) throws {
        directory = RuntimeTest.temporaryDirectory(name)
        socket = directory + "/agent.sock"
        unlink(socket)
        // The agent's log goes to a file (a pipe nobody reads would fill and block it).
        let command = "exec \(RuntimeTest.agentBinary) --unix \(socket) --cgroup-root none --exit-with-parent 2>>\(directory)/agent.log"
        process = try ChildProcess(executable: "/bin/sh", arguments: ["-c", command])
    }

    deinit { kill() }

    func kill() {
        process.signal(SIGKILL)
        _ = process.waitForExit(timeoutMilliseconds: 5000)
    }

    func connect() throws -> AgentDriver { try AgentDriver.connectUnix(socket) }

    /// The agent's direct children (its containers' processes), from /proc.
    var children: [pid_t] {
        RuntimeTest.list("/proc/\(process.pid)/task").flatMap { task in
            (readTextFile("/proc/\(process.pid)/task/\(task)/children") ?? "").split(separator: " ").compactMap { pid_t($0) }
        }
    }
}
