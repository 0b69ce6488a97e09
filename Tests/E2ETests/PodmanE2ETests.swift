#if canImport(Glibc)
import Glibc
#endif
import Harness
import Testing

/// podman, unchanged, with kvmrun as its OCI runtime (`podman --runtime <kvmrun>`): each container
/// a microVM, driven through conmon exactly as podman drives runc (create --bundle --pid-file
/// [--console-socket], start, exec --detach --process, kill ID SIGNUM, delete --force, pause,
/// resume, update --resources). Needs root, podman + conmon on the host and a hardware-style KVM:
/// runs in the nested host (make test). See notes/podman-calls.md for what podman expects.
@Suite("podman with kvmrun as its runtime", .serialized,
       .enabled(if: E2E.runtimeEnabled && Podman.available && getuid() == 0))
struct PodmanE2ETests {
    init() throws {
        try #require(Podman.setUpFailure == nil, "podman set-up: \(Podman.setUpFailure ?? "")")
    }

    @Test("run --rm echo hi prints hi, and leaves no container, kvmrun state or process behind")
    func runRemove() throws {
        let cidFile = E2E.temporaryPath("podman-cid")
        defer { unlink(cidFile) }
        let result = try Podman.run(["run", "--rm", "--cidfile", cidFile, Podman.image, "echo", "hi"])
        #expect(result.status == 0, "stderr: \(result.stderr)")
        #expect(result.stdout == "hi\n", "stdout: \(result.stdout)")
        let id = Podman.trimmed(E2E.readFile(cidFile))
        try #require(id.count == 64, "cidfile: \(id)")
        let listed = try Podman.run(["ps", "-a", "-q", "--no-trunc"]).stdout
        #expect(!listed.contains(id), "podman still lists \(id)")
        #expect(try E2E.run(["state", id]).status != 0, "kvmrun still knows \(id) after podman removed it")
        // (conmon's exit command, `podman container cleanup`, may still be finishing.)
        #expect(Podman.waitUntil(seconds: 10) { Podman.processMentioning(id) == nil },
                "left behind: \(Podman.processMentioning(id) ?? "")")
    }

    @Test("exit codes pass through: sh exit 3, a missing command 127, a non-executable 126")
    func exitCodes() throws {
        let three = try Podman.run(["run", "--rm", Podman.image, "sh", "-c", "echo out; echo err >&2; exit 3"])
        #expect(three.status == 3, "stderr: \(three.stderr)")
        #expect(three.stdout == "out\n" && three.stderr.contains("err"), "\(three)")
        // podman maps the runtime's message: "no such file or directory" -> 127,
        // "permission denied" -> 126 (getOCIRuntimeError).
        let missing = try Podman.run(["run", "--rm", Podman.image, "/bin/nope"])
        #expect(missing.status == 127, "stderr: \(missing.stderr)")
        #expect(missing.stderr.contains("/bin/nope"), "stderr: \(missing.stderr)")
        let denied = try Podman.run(["run", "--rm", Podman.image, "/etc/passwd"])
        #expect(denied.status == 126, "stderr: \(denied.stderr)")
    }

    @Test("run -d, exec (output, exit code, stdin), the host PID lives as long as the container, stop delivers SIGTERM")
    func detachedExecStop() throws {
        let name = "kvmrun-e2e-detached-\(getpid())"
        defer { _ = try? Podman.run(["rm", "-f", "-t", "0", name]) }
        let started = try Podman.run(["run", "-d", "--name", name, Podman.image,
                                      "sh", "-c", "trap 'echo got-term; exit 7' TERM; echo up; while :; do sleep 1; done"])
        #expect(started.status == 0, "stderr: \(started.stderr)")
        let id = Podman.trimmed(started.stdout)
        #expect(Podman.waitUntil(seconds: 120) { (try? Podman.run(["logs", name]))?.stdout.contains("up") == true },
                "the container's stdout never reached podman logs")
        let pid = Int32(Podman.inspect(name, "{{.State.Pid}}")) ?? 0
        #expect(Podman.inspect(name, "{{.State.Status}}") == "running")
        #expect(Podman.alive(pid), "podman's container PID \(pid) is not a live host process")

        let echo = try Podman.run(["exec", name, "echo", "x"])
        #expect(echo.status == 0 && echo.stdout == "x\n", "\(echo)")
        #expect(try Podman.run(["exec", name, "sh", "-c", "exit 5"]).status == 5)
        let cat = try Podman.run(["exec", "-i", name, "cat"], stdin: "ping\n")
        #expect(cat.stdout == "ping\n", "\(cat)")
        let missing = try Podman.run(["exec", name, "/bin/nope"])
        #expect(missing.status == 127, "stderr: \(missing.stderr)")

        let stop = try Podman.run(["stop", "-t", "30", name])
        #expect(stop.status == 0, "stderr: \(stop.stderr)")
        #expect(Podman.inspect(name, "{{.State.Status}} {{.State.ExitCode}}") == "exited 7")
        #expect(try Podman.run(["logs", name]).stdout.contains("got-term"))
        #expect(Podman.waitUntil(seconds: 10) { !Podman.alive(pid) }, "host PID \(pid) outlived its container")
        #expect(try Podman.run(["rm", name]).status == 0)
        #expect(try E2E.run(["state", id]).status != 0, "kvmrun still knows \(id)")
        // (conmon's exit command, `podman container cleanup`, may still be finishing.)
        #expect(Podman.waitUntil(seconds: 10) { Podman.processMentioning(id) == nil },
                "left behind: \(Podman.processMentioning(id) ?? "")")
    }

    @Test("kill sends the signal asked (USR1 trapped), then SIGKILL: exit 137")
    func killSignals() throws {
        let name = "kvmrun-e2e-kill-\(getpid())"
        defer { _ = try? Podman.run(["rm", "-f", "-t", "0", name]) }
        let started = try Podman.run(["run", "-d", "--name", name, Podman.image,
                                      "sh", "-c", "trap 'echo got-usr1' USR1; echo up; while :; do sleep 1; done"])
        #expect(started.status == 0, "stderr: \(started.stderr)")
        #expect(Podman.waitUntil(seconds: 120) { (try? Podman.run(["logs", name]))?.stdout.contains("up") == true })
        #expect(try Podman.run(["kill", "-s", "USR1", name]).status == 0)
        #expect(Podman.waitUntil(seconds: 30) { (try? Podman.run(["logs", name]))?.stdout.contains("got-usr1") == true },
                "SIGUSR1 did not reach the container's process")
        #expect(Podman.inspect(name, "{{.State.Status}}") == "running")
        #expect(try Podman.run(["kill", name]).status == 0)
        #expect(Podman.waitUntil(seconds: 30) { Podman.inspect(name, "{{.State.Status}}") == "exited" })
        #expect(Podman.inspect(name, "{{.State.ExitCode}}") == "137")
    }

    @Test("rm -f of a running container removes it everywhere")
    func removeRunning() throws {
        let name = "kvmrun-e2e-rm-\(getpid())"
        let started = try Podman.run(["run", "-d", "--name", name, Podman.image, "sleep", "1000"])
        defer { _ = try? Podman.run(["rm", "-f", "-t", "0", name]) }
        try #require(started.status == 0, "stderr: \(started.stderr)")
        let id = Podman.trimmed(started.stdout)
        try #require(id.count == 64, "podman run -d printed \(started.stdout)")
        #expect(Podman.waitUntil(seconds: 60) { Podman.inspect(name, "{{.State.Status}}") == "running" })
        let pid = Int32(Podman.inspect(name, "{{.State.Pid}}")) ?? 0
        let removed = try Podman.run(["rm", "-f", "-t", "0", name])
        #expect(removed.status == 0, "stderr: \(removed.stderr)")
        let listed = try Podman.run(["ps", "-a", "-q", "--no-trunc"]).stdout
        #expect(!listed.contains(id), "podman still lists \(id)")
        #expect(try E2E.run(["state", id]).status != 0, "kvmrun still knows \(id)")
        #expect(Podman.waitUntil(seconds: 10) { !Podman.alive(pid) && Podman.processMentioning(id) == nil },
                "left behind: \(Podman.processMentioning(id) ?? "host PID \(pid)")")
    }

    @Test("run -it and exec -it: the process has a terminal on stdin and stdout; exit codes pass through")
    func terminal() throws {
        let run = try Podman.runInTerminal(["run", "--rm", "-it", Podman.image,
                                            "sh", "-c", "tty; [ -t 0 ] && echo stdin-is-a-tty; exit 4"])
        #expect(run.status == 4, "output: \(run.stdout) stderr: \(run.stderr)")
        #expect(run.stdout.contains("/dev/pts/") && run.stdout.contains("stdin-is-a-tty"), "output: \(run.stdout)")

        let name = "kvmrun-e2e-tty-\(getpid())"
        defer { _ = try? Podman.run(["rm", "-f", "-t", "0", name]) }
        #expect(try Podman.run(["run", "-d", "--name", name, Podman.image, "sleep", "1000"]).status == 0)
        let exec = try Podman.runInTerminal(["exec", "-it", name, "sh", "-c", "tty; [ -t 1 ] && echo stdout-is-a-tty; exit 6"])
        #expect(exec.status == 6, "output: \(exec.stdout) stderr: \(exec.stderr)")
        #expect(exec.stdout.contains("/dev/pts/") && exec.stdout.contains("stdout-is-a-tty"), "output: \(exec.stdout)")
    }

    @Test("run --memory 256m hot-adds the limit: the guest's MemTotal grows by it, the cgroup says 256 MiB; update --memory grows it")
    func memory() throws {
        let probe = "grep MemTotal /proc/meminfo; cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes"
        let plain = try Podman.run(["run", "--rm", Podman.image, "sh", "-c", probe])
        let limited = try Podman.run(["run", "--rm", "--memory", "256m", Podman.image, "sh", "-c", probe])
        #expect(plain.status == 0 && limited.status == 0, "\(plain.stderr) \(limited.stderr)")
        let base = Podman.number(after: "MemTotal:", in: plain.stdout) ?? 0
        let grown = Podman.number(after: "MemTotal:", in: limited.stdout) ?? 0
        print("podman run: guest MemTotal \(base) KiB without --memory, \(grown) KiB with --memory 256m")
        #expect(grown - base >= (256 << 10) - 4096, "MemTotal \(base) -> \(grown) KiB")
        #expect(limited.stdout.contains("268435456"), "the container's cgroup limit: \(limited.stdout)")

        let name = "kvmrun-e2e-mem-\(getpid())"
        defer { _ = try? Podman.run(["rm", "-f", "-t", "0", name]) }
        #expect(try Podman.run(["run", "-d", "--name", name, "--memory", "256m", Podman.image, "sleep", "1000"]).status == 0)
        let meminfoBefore = try Podman.run(["exec", name, "cat", "/proc/meminfo"]).stdout
        let before = Podman.number(after: "MemTotal:", in: meminfoBefore) ?? 0
        let update = try Podman.run(["update", "--memory", "512m", name])
        #expect(update.status == 0, "stderr: \(update.stderr)")
        let meminfoAfter = try Podman.run(["exec", name, "cat", "/proc/meminfo"]).stdout
        let after = Podman.number(after: "MemTotal:", in: meminfoAfter) ?? 0
        print("podman update --memory 256m -> 512m: guest MemTotal \(before) -> \(after) KiB")
        #expect(after - before >= (256 << 10) - 4096, "MemTotal \(before) -> \(after) KiB")
    }

    @Test("pause freezes the container, unpause resumes it")
    func pause() throws {
        let name = "kvmrun-e2e-pause-\(getpid())"
        defer { _ = try? Podman.run(["rm", "-f", "-t", "0", name]) }
        #expect(try Podman.run(["run", "-d", "--name", name, Podman.image, "sleep", "1000"]).status == 0)
        #expect(try Podman.run(["pause", name]).status == 0)
        #expect(Podman.inspect(name, "{{.State.Status}}") == "paused")
        #expect(try Podman.run(["unpause", name]).status == 0)
        #expect(Podman.inspect(name, "{{.State.Status}}") == "running")
        #expect(try Podman.run(["exec", name, "echo", "awake"]).stdout == "awake\n")
    }
}
