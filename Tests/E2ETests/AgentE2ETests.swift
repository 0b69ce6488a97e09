#if canImport(Glibc)
import Glibc
#endif
import AgentClient
import AgentProtocol
import AgentHost
import FoundationEssentials
import Harness
import Sys
import Testing

/// The guest agent in a real microVM (kvmrun, the firmware kernel, the agent initramfs), driven
/// over hybrid vsock by the host-side client: containers from a busybox ext4 image on virtio-blk,
/// their processes, stdio, signals, terminals, PID namespaces, stats, OOM kills, and a host that
/// goes away mid-call. Needs a hardware-style KVM: runs in the nested host (make test).
@Suite("Agent in a microVM", .serialized, .enabled(if: E2E.bootsEnabled && AgentVM.firmwareBuilt))
struct AgentE2ETests {
    @Test("containers: echo hello, exit codes, an exec, stdin, signals, a pty and a resize, PID namespaces, stats, guest calls")
    func containers() throws {
        // Two vCPUs, one online at boot: OnlineCPUMem brings the other up (Kata's CPU hot-add).
        let vm = try AgentVM(name: "agent-containers", cpus: 2, cmdline: " maxcpus=1")
        let agent = vm.driver
        #expect(try agent.client.check().status == .serving)
        #expect(try agent.client.version().agentVersion.isEmpty == false)
        var sandbox = Grpc_CreateSandboxRequest()
        sandbox.sandboxID = "sb1"
        sandbox.hostname = "sandbox1"
        try agent.client.createSandbox(sandbox)

        // CreateContainer + StartContainer running echo hello: the bytes and exit code 0.
        try vm.createContainer("hello", ["echo", "hello"])
        try agent.start("hello")
        #expect(try agent.readAll("hello") == "hello\n")
        #expect(try agent.wait("hello") == 0)
        try agent.remove("hello")

        // A process that exits 3 reports 3; its stderr is its own stream.
        try vm.createContainer("three", ["sh", "-c", "echo to-stderr >&2; exit 3"])
        try agent.start("three")
        #expect(try agent.readAll("three", stderr: true) == "to-stderr\n")
        #expect(try agent.wait("three") == 3)
        try agent.remove("three")

        // A program that does not exist fails CreateContainer at once, saying so.
        #expect {
            try vm.createContainer("nope", ["/bin/nope"])
        } throws: { error in
            "\(error)".contains("exec /bin/nope: No such file or directory")
        }

        // A running container: exec a second process into it (same UTS namespace, not PID 1).
        var options = ContainerSpecs.Options()
        options.hostname = "box"
        try vm.createContainer("main", ["sh", "-c", "trap 'echo got-term; exit 7' TERM; echo up; while true; do sleep 0.1; done"], options: options)
        try agent.start("main")
        #expect(try agent.readUntil("main", "up\n").contains("up"))
        try agent.exec("main", "e1", ContainerSpecs.process(["sh", "-c", "hostname; echo pid=$$"]))
        let lines = try agent.readAll("main", "e1").split(separator: "\n").map(String.init)
        #expect(lines.first == "box", "\(lines)")
        #expect(lines.count == 2 && lines[1] != "pid=1", "\(lines)")
        #expect(try agent.wait("main", "e1") == 0)
        #expect {
            try agent.exec("main", "e2", ContainerSpecs.process(["no-such-command"]))
        } throws: { error in
            "\(error)".contains("exec \"no-such-command\": executable file not found in $PATH")
        }

        // stdin to cat, echoed back.
        try agent.exec("main", "cat", ContainerSpecs.process(["cat"]))
        #expect(try agent.write("main", "ping\n", execID: "cat") == 5)
        try agent.closeStdin("main", "cat")
        #expect(try agent.readAll("main", "cat") == "ping\n")
        #expect(try agent.wait("main", "cat") == 0)

        // SIGKILL to an exec'd process; SIGTERM to an init that traps it.
        try agent.exec("main", "sleeper", ContainerSpecs.process(["sleep", "100"]))
        try agent.signal("main", "sleeper", SIGKILL)
        #expect(try agent.wait("main", "sleeper") == 137)
        try agent.signal("main", nil, SIGTERM)
        #expect(try agent.wait("main") == 7)
        #expect(try agent.readAll("main").contains("got-term"))
        try agent.remove("main")

        // SIGTERM to an init without a handler: Kata's rule makes it SIGKILL (137).
        try vm.createContainer("plain", ["sleep", "100"])
        try agent.start("plain")
        try agent.signal("plain", nil, SIGTERM)
        #expect(try agent.wait("plain") == 137)
        try agent.remove("plain")

        // A terminal: the process has a pty of its own, its size, and a resize.
        var terminal = ContainerSpecs.Options()
        terminal.terminal = true
        terminal.rows = 24
        terminal.columns = 80
        try vm.createContainer("tty", ["sh", "-c", "tty; stty size; read line; stty size"], options: terminal)
        try agent.start("tty")
        let before = try agent.readUntil("tty", "24 80")
        #expect(before.contains("/dev/pts/0"), "\(before)")
        try agent.resize("tty", rows: 50, columns: 132)
        _ = try agent.write("tty", "\n")
        #expect(try agent.readAll("tty").contains("50 132"))
        #expect(try agent.wait("tty") == 0)
        try agent.remove("tty")

        // Two containers in one sandbox have separate PID namespaces.
        try vm.createContainer("a", ["sleep", "100"])
        try agent.start("a")
        try vm.createContainer("b", ["sh", "-c", "echo $$; ps -o pid,comm"])
        try agent.start("b")
        let seen = try agent.readAll("b")
        #expect(seen.hasPrefix("1\n"), "\(seen)")
        #expect(seen.contains("ps") && !seen.contains("sleep"), "container b sees container a's processes: \(seen)")
        #expect(try agent.wait("b") == 0)
        try agent.remove("b")

        // StatsContainer: CPU time and memory of a container that worked a little.
        try vm.createContainer("busy", ["sh", "-c", "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; echo done; sleep 100"])
        try agent.start("busy")
        #expect(try agent.readUntil("busy", "done").contains("done"))
        let stats = try agent.stats("busy")
        #expect(stats.cgroupStats.cpuStats.cpuUsage.totalUsage > 0)
        #expect(stats.cgroupStats.memoryStats.usage.usage > 0)
        #expect(stats.cgroupStats.pidsStats.current >= 1)
        // UpdateContainer: a new memory limit, seen in the stats.
        try agent.client.updateContainer(.with {
            $0.containerID = "busy"
            $0.resources.memory.limit = 48 << 20
        })
        #expect(try agent.stats("busy").cgroupStats.memoryStats.usage.limit == 48 << 20)
        try agent.client.pauseContainer(.with { $0.containerID = "busy" })
        try agent.client.resumeContainer(.with { $0.containerID = "busy" })
        try agent.remove("busy")
        try agent.remove("a")

        // Guest-wide calls.
        let details = try agent.client.getGuestDetails(.with { $0.memBlockSize = true })
        #expect(details.agentDetails.initDaemon)
        try agent.client.setGuestDateTime(.with { $0.sec = 1_900_000_000; $0.usec = 0 })
        try agent.client.onlineCPUMem(.with { $0.nbCpus = 1; $0.cpuOnly = true })
        #expect {
            try agent.client.onlineCPUMem(.with { $0.nbCpus = 1; $0.cpuOnly = true })
        } throws: { error in "\(error)".contains("0 of the 1 CPUs asked for could be onlined (0 were offline; 2 online now)") }
        try agent.client.copyFile(.with {
            $0.path = "/run/kata-containers/shared/containers/hello.txt"
            $0.fileSize = 6
            $0.fileMode = 0o100644
            $0.dirMode = 0o755
            $0.data = Data("hello\n".utf8)
        })
        #expect {
            try agent.client.copyFile(.with { $0.path = "/etc/passwd"; $0.fileSize = 1; $0.data = Data("x".utf8) })
        } throws: { error in "\(error)".contains("INVALID_ARGUMENT") }

        let figures = try agent.agentFigures()
        print("kvmrun-agent in the guest: VmRSS \(figures["vmrss_kib"] ?? 0) KiB (anonymous \(figures["rss_anon_kib"] ?? 0) KiB), guest used memory (MemTotal - MemAvailable) \(figures["guest_used_kib"] ?? 0) KiB")
        #expect(vm.destroy() == 0, "DestroySandbox ends the VM with status 0; console:\n\(vm.consoleText)")
    }

    @Test("a container over its memory limit is OOM-killed and reported by GetOOMEvent")
    func oomKill() throws {
        let vm = try AgentVM(name: "agent-oom")
        let agent = vm.driver
        var options = ContainerSpecs.Options()
        options.memoryLimit = 16 << 20
        try vm.createContainer("hog", ["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"], options: options)
        final class Event: @unchecked Sendable {
            var id: String?
            var error: String?
            var done = false
        }
        let event = Event()
        let watcher = Parking()
        try startThread("GetOOMEvent") {
            var id: String?, failure: String?
            do {
                id = try agent.client.getOOMEvent(timeout: .after(.seconds(120))).containerID
            } catch {
                failure = "\(error)"
            }
            watcher.withLock { _ in
                event.id = id
                event.error = failure
                event.done = true
            }
            watcher.wakeAll()
        }
        try agent.start("hog")
        #expect(try agent.wait("hog") == 137, "killed by SIGKILL (the OOM killer)")
        let finished = watcher.withLock(deadline: MonotonicClock.deadline(after: .seconds(60))) { wait in
            while !event.done { if !wait() { break } }
            return event.done
        }
        #expect(finished, "GetOOMEvent did not answer")
        let (id, failure) = watcher.withLock { _ in (event.id, event.error) }
        #expect(id == "hog", "GetOOMEvent: \(id ?? failure ?? "nothing")")
        #expect(vm.consoleText.contains("OOM") || vm.consoleText.contains("oom"), "console:\n\(vm.consoleText)")
        #expect(vm.destroy() == 0)
    }

    @Test("the agent survives a host that disconnects mid-call and answers the next connection")
    func hostDisconnects() throws {
        let vm = try AgentVM(name: "agent-disconnect")
        try vm.createContainer("sleeper", ["sh", "-c", "sleep 2; echo late"])
        try vm.driver.start("sleeper")
        // Calls in flight (WaitProcess, ReadStdout) when the connection drops.
        let first = vm.driver
        try startThread("wait") { _ = try? first.wait("sleeper") }
        try startThread("read") { _ = try? first.read("sleeper") }
        usleep(300_000)
        first.client.close()
        let second = AgentDriver(client: try AgentClient.connect(hybridVsock: vm.socket))
        #expect(try second.client.check().status == .serving)
        #expect(try second.readAll("sleeper") == "late\n")
        #expect(try second.wait("sleeper") == 0)
        try second.remove("sleeper")
        try? second.client.destroySandbox()
        second.client.close()
        #expect(vm.vmm.waitForExit(timeoutMilliseconds: 60_000) == 0)
    }
}
