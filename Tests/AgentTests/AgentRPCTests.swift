#if canImport(Glibc)
import Glibc
#endif
import AgentClient
import AgentProtocol
import AgentHost
import Agent
import Sys
import Harness
import Testing

/// The built kvmrun-agent binary on this host, serving a Unix socket, driven over ttRPC by the
/// real host-side client: every layer of the agent but vsock and PID 1.
@Suite("Agent over ttRPC (host)", .serialized, .enabled(if: AgentTest.isRoot && AgentTest.agentBinaryExists))
struct AgentRPCTests {
    static var binary: String { AgentTest.agentBinary }

    /// One agent process for the suite.
    final class AgentProcess: @unchecked Sendable {
        let process: ChildProcess
        let socket: String
        init() throws {
            let directory = AgentTest.temporaryDirectory("rpc")
            socket = directory + "/agent.sock"
            // The agent's log goes to a file (a pipe nobody reads would fill and block it).
            let command = "exec \(AgentRPCTests.binary) --unix \(socket) --cgroup-root \(SandboxTests.cgroupRoot ?? "none") --cgroup-parent kvmrun-test-\(getpid())-agent --exit-with-parent 2>>\(directory)/agent.log"
            process = try ChildProcess(executable: "/bin/sh", arguments: ["-c", command])
        }
        deinit {
            process.signal(SIGKILL)
            _ = process.waitForExit(timeoutMilliseconds: 5000)
        }
        func connect() throws -> AgentDriver { try AgentDriver.connectUnix(socket) }
    }

    static let agent: AgentProcess = try! AgentProcess()

    @Test func healthAndVersion() throws {
        let driver = try Self.agent.connect()
        #expect(try driver.client.check().status == .serving)
        #expect(try driver.client.version().agentVersion == AgentVersion.agent)
        let figures = try driver.agentFigures()
        #expect((figures["vmrss_kib"] ?? 0) > 0)
        #expect((figures["guest_used_kib"] ?? 0) > 0)
    }

    @Test func echoHelloExitCodeAndErrors() throws {
        let driver = try Self.agent.connect()
        let rootfs = AgentTest.makeRootfs("rpc-echo")
        try driver.createContainer("echo", spec: ContainerSpecs.spec(rootfs: rootfs, args: ["echo", "hello"]))
        try driver.start("echo")
        #expect(try driver.readAll("echo") == "hello\n")
        #expect(try driver.wait("echo") == 0)
        try driver.remove("echo")

        try driver.createContainer("three", spec: ContainerSpecs.spec(rootfs: rootfs, args: ["sh", "-c", "exit 3"]))
        try driver.start("three")
        #expect(try driver.wait("three") == 3)
        try driver.remove("three")

        // A missing program: CreateContainer fails at once with the reason, over the wire.
        #expect {
            try driver.createContainer("nope", spec: ContainerSpecs.spec(rootfs: rootfs, args: ["/bin/nope"]))
        } throws: { error in
            let text = String(describing: error)
            return text.contains("exec /bin/nope: No such file or directory") && text.contains("CreateContainer")
        }
        #expect {
            try driver.start("missing")
        } throws: { error in
            String(describing: error).contains("NOT_FOUND")
        }
    }

    @Test func hostDisconnectsMidCall() throws {
        let rootfs = AgentTest.makeRootfs("rpc-disconnect")
        let first = try Self.agent.connect()
        try first.createContainer("sleeper", spec: ContainerSpecs.spec(rootfs: rootfs, args: ["sleep", "1"]))
        try first.start("sleeper")
        // A WaitProcess in flight when the host goes away.
        let waiter = first
        let thread = try startTestThread { _ = try? waiter.wait("sleeper") }
        usleep(200_000)
        first.client.close()
        thread.join()
        // The next connection is answered, and the process's status is still there.
        let second = try Self.agent.connect()
        #expect(try second.client.check().status == .serving)
        #expect(try second.wait("sleeper") == 0)
        try second.remove("sleeper")
    }
}

/// A joinable thread for tests.
final class TestThread: @unchecked Sendable {
    private let done = Monitor()
    private var finished = false
    func finish() { done.withLock { finished = true; done.broadcast() } }
    func join() { done.withLock { _ = done.wait { finished } } }
}

func startTestThread(_ body: @escaping @Sendable () -> Void) throws -> TestThread {
    let thread = TestThread()
    try startThread("test") {
        body()
        thread.finish()
    }
    return thread
}
