#if canImport(Glibc)
import Glibc
#endif
import AgentHost
import Runtime
import Sys
import Testing

/// The host relay as `kvmrun create`/`kvmrun exec` start it (ProcessRelay.spawn → the real
/// `kvmrun relay` child), against the real agent binary on a Unix socket running busybox
/// containers on this host: what the engine sees at the relay's pid.
@Suite("Process relay (host)", .serialized, .enabled(if: RuntimeTest.isRoot && RuntimeTest.binariesExist))
struct RelayTests {
    static let agent: TestAgent = try! TestAgent("relay-agent")

    func config(_ id: String, exec: String? = nil, exitFile: String? = nil) -> RelayConfig {
        RelayConfig(agentSocket: Self.agent.socket, agentSocketIsDirect: true, containerID: id, execID: exec, exitFile: exitFile)
    }

    func exitFileText(_ path: String) -> String { String(decoding: RuntimeTest.readFile(path), as: UTF8.self) }

    @Test("stdout and stderr bytes relayed; the exit file says 0; the relay ends with the process")
    func outputAndExitFile() throws {
        let driver = try Self.agent.connect()
        let rootfs = RuntimeTest.makeRootfs("relay-output")
        let exitFile = RuntimeTest.temporaryDirectory("relay-output") + "/exit"
        // Created, not started: the relay is there before the process runs, as at `kvmrun create`.
        try driver.createContainer("out", spec: ContainerSpecs.spec(rootfs: rootfs, args: ["sh", "-c", "echo out; echo err >&2; printf 'no newline'"]))
        let relay = try RelayChild(config("out", exitFile: exitFile))
        relay.closeStdin()
        usleep(200_000)
        try driver.start("out")
        #expect(relay.finish() == 0)
        #expect(relay.stdoutText == "out\nno newline")
        #expect(relay.stderrText == "err\n")
        #expect(exitFileText(exitFile) == "0\n")
        try driver.remove("out")
    }

    @Test("A container removed before it started: the relay ends too (kvmrun delete after create)")
    func removedBeforeStart() throws {
        let driver = try Self.agent.connect()
        let rootfs = RuntimeTest.makeRootfs("relay-unstarted")
        try driver.createContainer("never", spec: ContainerSpecs.spec(rootfs: rootfs, args: ["echo", "never printed"]))
        let relay = try RelayChild(config("never"))
        usleep(100_000)
        try driver.remove("never")
        let status = relay.finish(timeoutMilliseconds: 10_000)
        // RemoveContainer drops the init's start gate and SIGKILLs it: it ends as killed (137),
        // or first exits 127 itself on seeing the gate close, whichever the agent's race gives.
        #expect(status == 137 || status == 127, "status \(String(describing: status))")
        #expect(relay.stdoutText == "")
    }

    @Test("stdin relayed to cat until end-of-file; sh -c 'exit 7' → 7")
    func stdinAndExitCode() throws {
        let driver = try Self.agent.connect()
        let rootfs = RuntimeTest.makeRootfs("relay-stdin")
        try driver.createContainer("cat", spec: ContainerSpecs.spec(rootfs: rootfs, args: ["cat"]))
        let relay = try RelayChild(config("cat"))
        try driver.start("cat")
        relay.write("hello ")
        relay.write("relay\n")
        #expect(relay.waitForStdout("hello relay\n"))
        relay.write("second line\n")
        relay.closeStdin()
        #expect(relay.finish() == 0)
        #expect(relay.stdoutText == "hello relay\nsecond line\n")
        try driver.remove("cat")

        let exitFile = RuntimeTest.temporaryDirectory("relay-stdin") + "/exit-seven"
        try driver.createContainer("seven", spec: ContainerSpecs.spec(rootfs: rootfs, args: ["sh", "-c", "exit 7"]))
        let seven = try RelayChild(config("seven", exitFile: exitFile))
        seven.closeStdin()
        try driver.start("seven")
        let started = MonotonicClock.now
        #expect(seven.finish() == 7)
        // The relay goes with the process: the agent's drain time (500 ms), not the 3 s limit.
        #expect(MonotonicClock.now - started < 2_500_000_000)
        #expect(exitFileText(exitFile) == "7\n")
        #expect(seven.stderrText == "")
        try driver.remove("seven")
    }

    @Test("An exec'd process's output and status; stdinOpen false closes its stdin at once; 190 KB of output, none lost")
    func execAndBulk() throws {
        let driver = try Self.agent.connect()
        let rootfs = RuntimeTest.makeRootfs("relay-exec")
        try driver.createContainer("host", spec: ContainerSpecs.spec(rootfs: rootfs, args: ["sleep", "60"]))
        try driver.start("host")
        try driver.exec("host", "three", ContainerSpecs.process(["sh", "-c", "echo exec-out; echo exec-err >&2; exit 3"]))
        let three = try RelayChild(config("host", exec: "three"))
        #expect(three.finish() == 3)
        #expect(three.stdoutText == "exec-out\n")
        #expect(three.stderrText == "exec-err\n")

        // Our stdin pipe stays open, but the process reads end-of-file at once.
        try driver.exec("host", "closed", ContainerSpecs.process(["cat"]))
        var closed = config("host", exec: "closed")
        closed.stdinOpen = false
        let cat = try RelayChild(closed)
        #expect(cat.finish(timeoutMilliseconds: 5000) == 0)
        #expect(cat.stdoutText == "")

        let script = "i=0; while [ $i -lt 20000 ]; do echo line-$i; i=$((i+1)); done"
        try driver.exec("host", "bulk", ContainerSpecs.process(["sh", "-c", script]))
        let bulk = try RelayChild(config("host", exec: "bulk"))
        bulk.closeStdin()
        #expect(bulk.finish(timeoutMilliseconds: 60_000) == 0)
        let lines = bulk.stdoutText.split(separator: "\n")
        #expect(lines.count == 20000)
        #expect(lines.last == "line-19999")
        try driver.remove("host")
    }

    @Test("A background child that keeps writing does not keep the relay: it ends within the drain limit after the exit")
    func backgroundWriter() throws {
        let driver = try Self.agent.connect()
        let rootfs = RuntimeTest.makeRootfs("relay-background")
        try driver.createContainer("bg", spec: ContainerSpecs.spec(rootfs: rootfs, args: ["sleep", "60"]))
        try driver.start("bg")
        try driver.exec("bg", "parent", ContainerSpecs.process(["sh", "-c", "(while true; do echo bg; sleep 0.1; done) & sleep 0.3; exit 4"]))
        let relay = try RelayChild(config("bg", exec: "parent"))
        relay.closeStdin()
        let started = MonotonicClock.now
        #expect(relay.finish(timeoutMilliseconds: 10_000) == 4)
        let seconds = Double(MonotonicClock.now - started) / 1e9
        #expect(seconds > 2.5 && seconds < 5, "relay lived \(seconds) s")
        #expect(relay.stdoutText.hasPrefix("bg\n"))
        #expect(relay.stderrText == "")
        try driver.remove("bg")
    }

    @Test("SIGTERM to the relay reaches the process: an exec'd sleep → 143, a container init → 137")
    func signalsForwarded() throws {
        let driver = try Self.agent.connect()
        let rootfs = RuntimeTest.makeRootfs("relay-signal")
        try driver.createContainer("sig", spec: ContainerSpecs.spec(rootfs: rootfs, args: ["sleep", "60"]))
        let initRelay = try RelayChild(config("sig"))
        try driver.start("sig")
        try driver.exec("sig", "nap", ContainerSpecs.process(["sleep", "60"]))
        let exitFile = RuntimeTest.temporaryDirectory("relay-signal") + "/exit-nap"
        let execRelay = try RelayChild(config("sig", exec: "nap", exitFile: exitFile))
        kill(execRelay.pid, SIGTERM)
        #expect(execRelay.finish() == 143)
        #expect(exitFileText(exitFile) == "143\n")
        // An init of a PID namespace ignores a SIGTERM it has no handler for; the agent sends
        // SIGKILL instead (Sandbox.signalProcess), so the init ends as killed by 9.
        kill(initRelay.pid, SIGTERM)
        #expect(initRelay.finish() == 137)
        #expect(initRelay.stderrText == "")
        try driver.remove("sig")
    }

    @Test("A terminal: the pty master reaches the console socket, 'hi' comes through it, input and resizes go back")
    func terminal() throws {
        let driver = try Self.agent.connect()
        let directory = RuntimeTest.temporaryDirectory("relay-tty")
        let rootfs = RuntimeTest.makeRootfs("relay-tty")
        let console = try ConsoleSocket(path: directory + "/console.sock")
        var options = ContainerSpecs.Options()
        options.terminal = true
        try driver.createContainer("tty", spec: ContainerSpecs.spec(rootfs: rootfs, args: ["sh", "-c", "echo hi; read line; echo \"got $line\"; stty size"], options: options))
        var configuration = config("tty", exitFile: directory + "/exit")
        configuration.terminal = true
        configuration.consoleSocket = console.path
        configuration.consoleRows = 24
        configuration.consoleColumns = 80
        let relay = try RelayChild(configuration)
        relay.closeStdin()
        let master = console.receiveMaster()
        #expect(master >= 0)
        defer { close(master) }
        try driver.start("tty")
        #expect(readTerminal(master, until: "hi").contains("hi"))
        // The engine resizes the master: the relay gets SIGWINCH and passes the size on.
        var size = winsize(ws_row: 33, ws_col: 101, ws_xpixel: 0, ws_ypixel: 0)
        #expect(ioctl(master, UInt(TIOCSWINSZ), &size) == 0)
        usleep(300_000)
        _ = Glibc.write(master, "abc\r", 4)
        let rest = readTerminal(master, until: "33 101")
        #expect(rest.contains("got abc"))
        #expect(rest.contains("33 101"))
        #expect(relay.finish() == 0)
        #expect(exitFileText(directory + "/exit") == "0\n")
        #expect(relay.stdoutText == "")
        try driver.remove("tty")
    }

    @Test("The agent dies: the relay exits 255, says why, and the exit file says 255")
    func agentDeath() throws {
        let agent = try TestAgent("relay-death")
        let driver = try agent.connect()
        let rootfs = RuntimeTest.makeRootfs("relay-death")
        try driver.createContainer("doomed", spec: ContainerSpecs.spec(rootfs: rootfs, args: ["sleep", "60"]))
        try driver.start("doomed")
        let exitFile = agent.directory + "/exit"
        let relay = try RelayChild(RelayConfig(agentSocket: agent.socket, agentSocketIsDirect: true, containerID: "doomed", exitFile: exitFile))
        let orphans = agent.children
        agent.kill()
        for pid in orphans { kill(pid, SIGKILL) }
        #expect(relay.finish() == 255)
        #expect(relay.stderrText.contains("agent"))
        #expect(exitFileText(exitFile) == "255\n")
    }

    @Test("Start-up failures come back from spawn with the relay's reason")
    func spawnFailures() throws {
        let directory = RuntimeTest.temporaryDirectory("relay-fail")
        #expect {
            _ = try ProcessRelay.spawn(RelayConfig(agentSocket: directory + "/none.sock", agentSocketIsDirect: true, containerID: "c1"),
                                       executable: RuntimeTest.kvmrunBinary, timeoutSeconds: 10)
        } throws: { error in
            let text = "\(error)"
            return text.contains("start the relay for container c1") && text.contains("connect to the agent") && text.contains("ENOENT")
        }
        #expect(throws: RuntimeError.self) {
            _ = try ProcessRelay.spawn(RelayConfig(agentSocket: Self.agent.socket, containerID: "c1", terminal: true),
                                       executable: RuntimeTest.kvmrunBinary, timeoutSeconds: 10)
        }
        // A console socket nobody listens on: the relay cannot hand over the master.
        #expect {
            _ = try ProcessRelay.spawn(RelayConfig(agentSocket: Self.agent.socket, agentSocketIsDirect: true, containerID: "c1",
                                                   terminal: true, consoleSocket: directory + "/no-console.sock"),
                                       executable: RuntimeTest.kvmrunBinary, timeoutSeconds: 10)
        } throws: { error in
            "\(error)".contains("send the pty master to the console socket")
        }
    }

    @Test("The configuration round-trips through JSON")
    func configurationCoding() throws {
        var config = RelayConfig(agentSocket: "/run/vm.sock", containerID: "c1", execID: "e1", terminal: true, consoleSocket: "/c.sock",
                                 stdinOpen: false, exitFile: "/x/exit", consoleRows: 24, consoleColumns: 80)
        #expect(try RelayConfig.decode(config.encoded()) == config)
        config = RelayConfig(agentSocket: "/run/vm.sock", containerID: "c2")
        #expect(config.execID == "c2")
        #expect(try RelayConfig.decode(config.encoded()) == config)
    }
}
