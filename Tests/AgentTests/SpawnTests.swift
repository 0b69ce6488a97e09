#if canImport(Glibc)
import Glibc
#endif
import Agent
import CAgent
import Testing

/// The process-creation shim on this host, for real: plain processes, new namespaces with a
/// busybox rootfs and pivot_root, joining a running container, the start gate, a pty,
/// credentials and limits, and the errors it reports.
@Suite("Spawn", .serialized)
struct SpawnTests {
    @Test func echoThroughPipes() throws {
        let run = try SpawnRun.run({ _ in }, args: ["echo", "hello"])
        #expect(run.stdout == "hello\n")
        #expect(run.status == .exited(0))
    }

    @Test func exitCodeAndSignal() throws {
        #expect(try SpawnRun.run({ _ in }, args: ["sh", "-c", "exit 3"]).status?.code == 3)
        let killed = try SpawnRun.run({ _ in }, args: ["sh", "-c", "kill -9 $$"]).status
        #expect(killed == .killed(SIGKILL))
        #expect(killed?.code == 137)
    }

    @Test func missingProgramIsReportedAtOnce() {
        #expect {
            _ = try SpawnRun.run({ _ in }, args: ["nope-not-a-program"])
        } throws: { error in
            (error as? SpawnError)?.description == "exec \"nope-not-a-program\": executable file not found in $PATH"
        }
        #expect {
            _ = try SpawnRun.run({ _ in }, args: ["/bin/nope"])
        } throws: { error in
            (error as? SpawnError)?.description == "exec /bin/nope: No such file or directory"
        }
    }

    @Test func badWorkingDirectoryNamesTheStep() {
        #expect {
            _ = try SpawnRun.run({ $0.cwd = "/does/not/exist" }, args: ["true"])
        } throws: { error in
            (error as? SpawnError)?.description == "chdir /does/not/exist: No such file or directory"
        }
    }

    @Test(.enabled(if: AgentTest.isRoot)) func containerWithPivotRoot() throws {
        let rootfs = AgentTest.makeRootfs("pivot")
        let run = try SpawnRun.run({ request in
            request.cloneFlags = KVMRUN_CLONE_NEWNS | KVMRUN_CLONE_NEWPID | KVMRUN_CLONE_NEWUTS | KVMRUN_CLONE_NEWIPC
            request.rootfs = rootfs
            request.hostname = "box1"
            request.mounts = [SpawnRequest.Mount(source: "proc", target: "/proc", fstype: "proc", data: nil, flags: 0),
                              SpawnRequest.Mount(source: "tmpfs", target: "/dev", fstype: "tmpfs", data: "mode=755", flags: 0)]
            request.defaultDevices = true
        }, args: ["sh", "-c", "echo pid=$$; hostname; ls /; ls /proc/1/exe >/dev/null && echo proc-ok; echo x > /dev/null && echo null-ok"])
        #expect(run.status == .exited(0), "stderr: \(run.stderr)")
        let lines = run.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first == "pid=1")
        #expect(lines.contains("box1"))
        #expect(lines.contains("etc") && lines.contains("bin"))
        #expect(!lines.contains("work") && !lines.contains("opt"), "host root visible: \(lines)")
        #expect(lines.contains("proc-ok") && lines.contains("null-ok"))
    }

    @Test(.enabled(if: AgentTest.isRoot)) func startGateHoldsExecUntilStart() throws {
        let rootfs = AgentTest.makeRootfs("gate")
        let output = Pipe()
        var request = SpawnRequest(args: ["echo", "started"], stdio: .fds(stdin: output.read, stdout: output.write, stderr: output.write))
        request.cloneFlags = KVMRUN_CLONE_NEWNS | KVMRUN_CLONE_NEWPID
        request.rootfs = rootfs
        request.waitForStart = true
        let box = ExitBox()
        let pending = try AgentTest.reaper.launching(box) { () throws(SpawnError) in
            let pending = try Spawner.launch(request)
            return (pending.pid, pending.pidfd, pending)
        }
        close(output.write)
        #expect(try pending.finish() == .waitingForStart)
        #expect(box.wait(timeoutMilliseconds: 200) == nil)
        try pending.start()
        #expect(Pipe.drain(output.read) == "started\n")
        #expect(box.wait() == .exited(0))
        close(output.read)
        close(pending.pidfd)
    }

    @Test(.enabled(if: AgentTest.isRoot)) func joinRunningContainer() throws {
        let rootfs = AgentTest.makeRootfs("join")
        let hold = Pipe(), output = Pipe()
        var request = SpawnRequest(args: ["sh", "-c", "echo ready; cat >/dev/null"], stdio: .fds(stdin: hold.read, stdout: output.write, stderr: output.write))
        request.cloneFlags = KVMRUN_CLONE_NEWNS | KVMRUN_CLONE_NEWPID | KVMRUN_CLONE_NEWUTS | KVMRUN_CLONE_NEWIPC
        request.rootfs = rootfs
        request.hostname = "joined"
        request.mounts = [SpawnRequest.Mount(source: "proc", target: "/proc", fstype: "proc", data: nil, flags: 0)]
        request.env = ["PATH=/bin"]
        let initBox = ExitBox()
        let initSpawn = try AgentTest.reaper.launching(initBox) { () throws(SpawnError) in
            let pending = try Spawner.launch(request)
            return (pending.pid, pending.pidfd, pending)
        }
        close(hold.read)
        close(output.write)
        _ = try initSpawn.finish()
        var line = [UInt8](repeating: 0, count: 6)
        // SAFETY: reads 6 bytes into the 6-byte local buffer.
        _ = line.withUnsafeMutableBytes { read(output.read, $0.baseAddress, 6) }
        #expect(String(decoding: line, as: UTF8.self) == "ready\n")

        let names = ["ipc", "uts", "net", "pid", "cgroup", "mnt"]
        let fds = names.map { open("/proc/\(initSpawn.pid)/ns/\($0)", O_RDONLY | O_CLOEXEC) }
        defer { for fd in fds { close(fd) } }
        let run = try SpawnRun.run({ request in
            request.joinNamespaces = fds
        }, args: ["sh", "-c", "echo pid=$$; hostname; cat /proc/1/cmdline | tr '\\0' ' '; ls /"])
        #expect(run.status == .exited(0), "stderr: \(run.stderr)")
        let lines = run.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first != "pid=1" && lines.first?.hasPrefix("pid=") == true)
        #expect(lines.contains("joined"))
        #expect(!lines.contains("work"), "host root visible: \(lines)")

        // A process that fails before the intermediate has sent its pid still reports the
        // failure (the error record can come first): every attempt must fail, naming the step.
        for attempt in 0..<20 {
            #expect(throws: SpawnError(step: "exec", path: "/bin/nope", errno: ENOENT), "attempt \(attempt)") {
                _ = try SpawnRun.run({ $0.joinNamespaces = fds }, args: ["/bin/nope"])
            }
        }

        close(hold.write)   // the init's `read` ends
        #expect(initBox.wait() == .exited(0))
        close(output.read)
        close(initSpawn.pidfd)
    }

    @Test(.enabled(if: AgentTest.isRoot)) func terminalGetsPtyInContainer() throws {
        let rootfs = AgentTest.makeRootfs("pty")
        var request = SpawnRequest(args: ["sh", "-c", "tty; stty size"], stdio: .terminal(rows: 33, columns: 101))
        request.cloneFlags = KVMRUN_CLONE_NEWNS | KVMRUN_CLONE_NEWPID
        request.rootfs = rootfs
        request.mounts = [SpawnRequest.Mount(source: "tmpfs", target: "/dev", fstype: "tmpfs", data: "mode=755", flags: 0),
                          SpawnRequest.Mount(source: "devpts", target: "/dev/pts", fstype: "devpts", data: "newinstance,ptmxmode=0666,mode=0620", flags: 0)]
        request.defaultDevices = true
        request.env = ["PATH=/bin"]
        let box = ExitBox()
        let pending = try AgentTest.reaper.launching(box) { () throws(SpawnError) in
            let pending = try Spawner.launch(request)
            return (pending.pid, pending.pidfd, pending)
        }
        _ = try pending.finish()
        let master = pending.takeConsole()
        #expect(master >= 0)
        let text = Pipe.drain(master, timeoutMilliseconds: 5000)
        #expect(text.contains("/dev/pts/0"), "pty output: \(text)")
        #expect(text.contains("33 101"), "pty output: \(text)")
        #expect(box.wait() == .exited(0))
        close(master)
        close(pending.pidfd)
    }

    @Test(.enabled(if: AgentTest.isRoot)) func credentialsAndLimits() throws {
        let rootfs = AgentTest.makeRootfs("creds")
        let run = try SpawnRun.run({ request in
            request.cloneFlags = KVMRUN_CLONE_NEWNS | KVMRUN_CLONE_NEWPID
            request.rootfs = rootfs
            request.mounts = [SpawnRequest.Mount(source: "proc", target: "/proc", fstype: "proc", data: nil, flags: 0)]
            request.uid = 1000
            request.gid = 1000
            request.groups = [2000]
            var caps = SpawnRequest.Capabilities()
            caps.bounding = 1 << 10   // CAP_NET_BIND_SERVICE
            caps.permitted = 1 << 10
            caps.effective = 1 << 10
            caps.inheritable = 1 << 10
            caps.ambient = 1 << 10
            request.capabilities = caps
            request.noNewPrivileges = true
            request.rlimits = [SpawnRequest.Rlimit(resource: 7, soft: 100, hard: 200)]   // RLIMIT_NOFILE
            request.cwd = "/home/app"
        }, args: ["sh", "-c", "id; ulimit -n; pwd; grep -E '^(CapEff|CapBnd|CapAmb|NoNewPrivs)' /proc/self/status"])
        #expect(run.status == .exited(0), "stderr: \(run.stderr)")
        let lines = run.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first?.hasPrefix("uid=1000(app) gid=1000(app)") == true, "\(lines)")
        #expect(lines.first?.contains("2000") == true, "\(lines)")
        #expect(lines.contains("100"))
        #expect(lines.contains("/home/app"))
        #expect(lines.contains { $0.hasPrefix("CapEff:") && $0.hasSuffix("0000000000000400") }, "\(lines)")
        #expect(lines.contains { $0.hasPrefix("CapBnd:") && $0.hasSuffix("0000000000000400") }, "\(lines)")
        #expect(lines.contains { $0.hasPrefix("CapAmb:") && $0.hasSuffix("0000000000000400") }, "\(lines)")
        #expect(lines.contains { $0.hasPrefix("NoNewPrivs:") && $0.hasSuffix("1") }, "\(lines)")
    }

    @Test(.enabled(if: AgentTest.isRoot)) func maskedAndReadonlyPaths() throws {
        let rootfs = AgentTest.makeRootfs("mask")
        try Files.create(rootfs + "/etc/secret", Array("top secret\n".utf8))
        try Files.makeDirectories(rootfs + "/secrets")
        try Files.create(rootfs + "/secrets/key", Array("k\n".utf8))
        let run = try SpawnRun.run({ request in
            request.cloneFlags = KVMRUN_CLONE_NEWNS | KVMRUN_CLONE_NEWPID
            request.rootfs = rootfs
            request.mounts = [SpawnRequest.Mount(source: "tmpfs", target: "/dev", fstype: "tmpfs", data: nil, flags: 0)]
            request.defaultDevices = true
            request.maskedPaths = ["/etc/secret", "/secrets", "/not/there"]
            request.readonlyPaths = ["/etc", "/also/not/there"]
        }, args: ["sh", "-c", "echo [$(cat /etc/secret)]; ls /secrets | wc -l; touch /etc/new 2>/dev/null && echo writable || echo readonly; touch /tmp/ok && echo tmp-ok"])
        #expect(run.status == .exited(0), "stderr: \(run.stderr)")
        #expect(run.stdout == "[]\n0\nreadonly\ntmp-ok\n", "stdout: \(run.stdout)")
    }

    @Test(.enabled(if: AgentTest.isRoot)) func specMountsSysfsMqueueBind() throws {
        let rootfs = AgentTest.makeRootfs("mounts")
        let shared = AgentTest.temporaryDirectory("mounts-shared")
        try Files.create(shared + "/note", Array("from the host\n".utf8))
        try Files.create(shared + "/single", Array("one file\n".utf8))
        let run = try SpawnRun.run({ request in
            request.cloneFlags = KVMRUN_CLONE_NEWNS | KVMRUN_CLONE_NEWPID | KVMRUN_CLONE_NEWIPC | KVMRUN_CLONE_NEWNET
            request.rootfs = rootfs
            request.mounts = [
                SpawnRequest.Mount(source: "proc", target: "/proc", fstype: "proc", data: nil, flags: 0),
                SpawnRequest.Mount(source: "sysfs", target: "/sys", fstype: "sysfs", data: nil, flags: KVMRUN_MS_RDONLY | KVMRUN_MS_NOSUID),
                SpawnRequest.Mount(source: "mqueue", target: "/dev/mqueue", fstype: "mqueue", data: nil, flags: KVMRUN_MS_NOSUID),
                SpawnRequest.Mount(source: shared, target: "/data", fstype: nil, data: nil, flags: KVMRUN_MS_BIND | KVMRUN_MS_REC | KVMRUN_MS_RDONLY),
                SpawnRequest.Mount(source: shared + "/single", target: "/etc/single", fstype: nil, data: nil, flags: KVMRUN_MS_BIND),
            ]
        }, args: ["sh", "-c", "cat /data/note /etc/single; touch /data/x 2>/dev/null && echo data-writable || echo data-readonly; grep -E ' /(sys|dev/mqueue|data) ' /proc/mounts | cut -d' ' -f2,3; ls /sys/class/net"])
        #expect(run.status == .exited(0), "stderr: \(run.stderr)")
        let lines = run.stdout.split(separator: "\n").map(String.init)
        #expect(lines.prefix(3) == ["from the host", "one file", "data-readonly"], "\(lines)")
        #expect(lines.contains("/sys sysfs") && lines.contains("/dev/mqueue mqueue") && lines.contains { $0.hasPrefix("/data ") }, "\(lines)")
        #expect(lines.last == "lo", "a new network namespace has only lo: \(lines)")
    }

    @Test(.enabled(if: AgentTest.isRoot)) func failingMountNamesStepAndPath() {
        let rootfs = AgentTest.makeRootfs("badmount")
        #expect {
            _ = try SpawnRun.run({ request in
                request.cloneFlags = KVMRUN_CLONE_NEWNS | KVMRUN_CLONE_NEWPID
                request.rootfs = rootfs
                request.mounts = [SpawnRequest.Mount(source: "x", target: "/mnt", fstype: "no-such-fs", data: nil, flags: 0)]
            }, args: ["true"])
        } throws: { error in
            (error as? SpawnError)?.description == "mount /mnt: No such device"
        }
    }
}
