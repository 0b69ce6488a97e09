#if canImport(Glibc)
import Glibc
#endif
import Harness
import Testing

/// The OCI runtime end to end: `kvmrun` alone, as runc's verbs, each container in a microVM
/// booted from the firmware kernel and agent initramfs, in the nested test host.
@Suite("OCI runtime: containers in microVMs", .serialized, .enabled(if: E2E.runtimeEnabled && AgentVM.firmwareBuilt))
struct RuntimeE2ETests {
    @Test("create, state, start, exec, pause, resume, kill, delete: states, pid file, output, nothing left")
    func lifecycle() throws {
        let rt = RuntimeHarness("lifecycle")
        let before = rt.footprint()
        let bundle = try rt.bundle("sleep", ["sleep", "600"])
        let pidFile = rt.work + "/pid"
        try rt.ok(["create", "--bundle", bundle, "--pid-file", pidFile, "c1"])
        let created = try #require(try rt.state("c1"))
        #expect(created.status == "created")
        let pid = Int32(E2E.readFile(pidFile).trimmingCharacters()) ?? -1
        #expect(pid == created.pid && pid > 0 && kill(pid, 0) == 0, "pid file \(pid), state pid \(created.pid)")
        #expect(rt.vmmProcesses().count == 1)
        // A second create of the same id is refused and changes nothing.
        let again = try rt.kvmrun(["create", "--bundle", bundle, "c1"])
        #expect(again.status != 0 && again.stderr.contains("c1"), "\(again)")

        try rt.ok(["start", "c1"])
        #expect(try rt.state("c1")?.status == "running")
        let refused = try rt.kvmrun(["start", "c1"])
        #expect(refused.status != 0 && refused.stderr.contains("running"), "\(refused)")
        #expect(try rt.ok(["exec", "c1", "sh", "-c", "echo from-exec; hostname"]) == "from-exec\nkvmrun\n")
        let exit7 = try rt.kvmrun(["exec", "c1", "sh", "-c", "exit 7"])
        #expect(exit7.status == 7)
        let missing = try rt.kvmrun(["exec", "c1", "/no/such/binary"])
        #expect(missing.status == 127 && missing.stderr.contains("no such file or directory"), "\(missing)")
        #expect(try rt.ok(["ps", "--format", "json", "c1"]).contains("\(pid)"))
        #expect(try rt.ok(["list"]).contains("c1"))

        try rt.ok(["pause", "c1"])
        #expect(try rt.state("c1")?.status == "paused")
        try rt.ok(["resume", "c1"])
        #expect(try rt.state("c1")?.status == "running")

        try rt.ok(["kill", "c1", "KILL"])
        #expect(try rt.waitFor("c1", "stopped"))
        #expect(kill(pid, 0) != 0, "the relay (pid \(pid)) outlived its container")
        try rt.ok(["delete", "c1"])
        #expect(try rt.state("c1") == nil)
        let after = rt.footprint()
        print("runtime lifecycle: before \(before); after \(after)")
        #expect(after == before)
    }

    @Test("run prints from inside the guest and passes the exit code through; --rm style cleanup")
    func runForeground() throws {
        let rt = RuntimeHarness("run")
        let before = rt.footprint()
        let bundle = try rt.bundle("echo", ["sh", "-c", "echo hello from the guest; uname -r; exit 3"])
        let result = try rt.kvmrun(["run", "--bundle", bundle, "r1"])
        #expect(result.status == 3, "\(result)")
        #expect(result.stdout.hasPrefix("hello from the guest\n"), "\(result)")
        #expect(result.stderr.isEmpty, "\(result)")
        #expect(try rt.state("r1") == nil)
        #expect(rt.footprint() == before)
        // A container killed by a signal: 128 + N, as a shell reports it.
        let selfkill = try rt.bundle("selfkill", ["sh", "-c", "sh -c 'kill -9 $$'; exit $?"])
        let killed = try rt.kvmrun(["run", "--bundle", selfkill, "r2"])
        #expect(killed.status == 137, "\(killed)")
        #expect(access(selfkill + "/oom", F_OK) != 0, "a kill that is not the OOM killer's leaves no oom mark")
        // The guest's OOM killer: 137, and podman's <bundle>/oom mark (conmon cannot see the guest's cgroup).
        let hog = try rt.bundle("hog", ["dd", "if=/dev/zero", "of=/dev/null", "bs=96M", "count=1"],
                                environment: ["BUNDLE_MEMORY": "\(32 << 20)"])
        let oom = try rt.kvmrun(["run", "--bundle", hog, "r4"])
        #expect(oom.status == 137, "\(oom)")
        #expect(access(hog + "/oom", F_OK) == 0, "the OOM kill is marked in the bundle")
        // A read-only root: the shared cached image, mounted read-only; /tmp (a tmpfs) still writes.
        let readonly = try rt.bundle("readonly", ["sh", "-c", "touch /x; echo status $?; touch /tmp/y && echo tmp ok"],
                                     environment: ["BUNDLE_READONLY": "true"])
        let ro = try rt.kvmrun(["run", "--bundle", readonly, "r5"])
        #expect(ro.status == 0 && ro.stdout.contains("status 1") && ro.stdout.contains("tmp ok"), "\(ro)")
        #expect(ro.stderr.contains("Read-only file system"), "\(ro)")
        // An init that does not exist: podman's words and a shell's status; nothing left.
        let absent = try rt.kvmrun(["run", "--bundle", try rt.bundle("absent", ["/no/such/init"]), "r3"])
        #expect(absent.status == 127 && absent.stderr.contains("no such file or directory"), "\(absent)")
        #expect(try rt.state("r3") == nil)
        #expect(rt.footprint() == before)
    }

    @Test("two containers in one sandbox: one VMM, each its own rootfs and process, removed one by one")
    func podOfTwo() throws {
        let rt = RuntimeHarness("pod")
        let before = rt.footprint()
        let infra = try rt.bundle("infra", ["sleep", "600"], environment: [
            "BUNDLE_ANNOTATIONS": #""io.kubernetes.cri.container-type": "sandbox""#,
        ])
        let app = try rt.bundle("app", ["sh", "-c", "echo app > /tmp/mark; sleep 600"], environment: [
            "BUNDLE_ANNOTATIONS": #""io.kubernetes.cri.container-type": "container", "io.kubernetes.cri.sandbox-id": "pod1""#,
        ])
        try rt.ok(["create", "--bundle", infra, "pod1"])
        try rt.ok(["start", "pod1"])
        try rt.ok(["create", "--bundle", app, "app1"])
        try rt.ok(["start", "app1"])
        #expect(rt.vmmProcesses().count == 1)
        #expect(try rt.state("app1")?.status == "running" && rt.state("pod1")?.status == "running")
        // Separate mount namespaces and root file systems: app1's /tmp file is not pod1's.
        #expect(try rt.ok(["exec", "app1", "cat", "/tmp/mark"]) == "app\n")
        #expect(try rt.kvmrun(["exec", "pod1", "cat", "/tmp/mark"]).status != 0)
        try rt.ok(["kill", "app1", "KILL"])
        #expect(try rt.waitFor("app1", "stopped"))
        #expect(try rt.state("pod1")?.status == "running")
        try rt.ok(["delete", "app1"])
        #expect(rt.vmmProcesses().count == 1)
        try rt.ok(["delete", "--force", "pod1"])
        #expect(rt.vmmProcesses().isEmpty)
        #expect(rt.footprint() == before)
    }

    @Test("a container's memory limit is hot-added on create and seen by the guest; update --memory resizes it; update --cpus brings vCPUs online")
    func memoryHotplug() throws {
        let rt = RuntimeHarness("memory")
        let plain = try rt.bundle("plain", ["sleep", "600"])
        try rt.ok(["run", "--detach", "--bundle", plain, "m0"])
        let base = try rt.memTotalKiB("m0")
        try rt.ok(["delete", "--force", "m0"])

        let limited = try rt.bundle("limited", ["sleep", "600"], environment: ["BUNDLE_MEMORY": "\(256 << 20)"])
        try rt.ok(["run", "--detach", "--bundle", limited, "m1"])
        let withLimit = try rt.memTotalKiB("m1")
        print("runtime memory: MemTotal base \(base) KiB, with a 256 MiB limit \(withLimit) KiB")
        #expect(withLimit - base >= 250 * 1024 && withLimit - base <= 258 * 1024)
        try rt.ok(["update", "--memory", "512m", "m1"])
        let grown = try rt.memTotalKiB("m1")
        print("runtime memory: after update --memory 512m \(grown) KiB")
        #expect(grown - withLimit >= 250 * 1024 && grown - withLimit <= 258 * 1024)
        #expect(try rt.ok(["events", "--stats", "m1"]).contains("\"memory\""))
        // The sandbox VM has a vCPU per host CPU (2 in the nested host), one online at boot.
        if sysconf(Int32(_SC_NPROCESSORS_ONLN)) >= 2 {
            let online = { try rt.ok(["exec", "m1", "cat", "/sys/devices/system/cpu/online"]).split(separator: "\n").first.map(String.init) }
            #expect(try online() == "0")
            try rt.ok(["update", "--cpus", "2", "m1"])
            #expect(try online() == "0-1")
            #expect(try rt.ok(["exec", "m1", "nproc"]).hasPrefix("2"))
        }
        try rt.ok(["delete", "--force", "m1"])
    }

    @Test("kill -9 of the sandbox's VMM: state says stopped, delete leaves no process, mount or file")
    func vmmKilled() throws {
        let rt = RuntimeHarness("vmmkill")
        let before = rt.footprint()
        try rt.ok(["run", "--detach", "--bundle", try rt.bundle("sleep", ["sleep", "600"]), "k1"])
        let vmms = rt.vmmProcesses()
        try #require(vmms.count == 1)
        kill(vmms[0], SIGKILL)
        #expect(try rt.waitFor("k1", "stopped"))
        let stopped = try #require(try rt.state("k1"))
        #expect(stopped.pid == 0)
        try rt.ok(["delete", "k1"])
        #expect(try rt.state("k1") == nil)
        var after = rt.footprint()
        for _ in 0..<25 where after != before {   // the relay notices its agent connection end
            usleep(200_000)
            after = rt.footprint()
        }
        print("runtime vmm kill -9: before \(before); after \(after)")
        #expect(after == before)
    }

    @Test("20 concurrent creates then deletes of different sandboxes, 10 concurrent commands on one: consistent")
    func concurrency() throws {
        let rt = RuntimeHarness("concurrent")
        let before = rt.footprint()
        let bundle = try rt.bundle("sleep", ["sleep", "600"])
        let ids = (0..<20).map { "p\($0)" }
        // Twenty guests booting at once on the nested host's two emulated cores take minutes,
        // not the default 120 s: the boot timeout is raised for them (not a retry).
        let created = try rt.concurrently(ids.map { ["create", "--bundle", bundle, $0] }, environment: "KVMRUN_BOOT_TIMEOUT=900")
        var made: [String] = [], faulted: [String] = []
        for (id, result) in zip(ids, created) {
            if result.status == 0 { made.append(id); continue }
            // A create that failed is consistent only when it names its step and left nothing.
            print("runtime concurrency: create \(id) failed: \(result.stderr)")
            #expect(try rt.state(id) == nil)
            // A guest that triple-faults while booting, or just after (its agent's connection
            // then closes mid-call: the error names the VMM's end, see SandboxVM.fate).
            if result.stderr.contains("guest triple fault") {
                faulted.append(id)
            } else {
                Issue.record("create \(id): \(result)")
            }
        }
        print("runtime concurrency: \(made.count) of 20 concurrent creates succeeded, \(faulted.count) guests triple-faulted")
        // Guest triple faults under load were the nested host's QEMU (a race in its TCG, README
        // "Boot reliability"), fixed in the QEMU with-kvm runs: one now fails the test, named.
        #expect(faulted.isEmpty, "guest triple faults at boot: \(faulted) (is L1 on scripts/build-qemu's QEMU?)")
        #expect(made.count + faulted.count == 20)
        #expect(Set(rt.ids()) == Set(made))
        // Every sandbox created must still run; one that triple-faulted after its create is named
        // as such (its VMM gone, its state stopped, its log naming the fault).
        var alive: [String] = []
        for id in made {
            let status = try rt.state(id)?.status
            if status == "created" { alive.append(id); continue }
            let log = E2E.readFile(rt.root + "/sandboxes/\(id)/vmm.log")
            print("runtime concurrency: \(id) is \(status ?? "gone") after its create; vmm log: \(log)")
            if status == "stopped" && log.contains("guest triple fault") { faulted.append(id) } else { Issue.record("\(id): \(status ?? "gone"), \(log)") }
        }
        #expect(alive.count == made.count, "guest triple faults after create: \(Set(made).subtracting(alive))")
        #expect(rt.vmmProcesses().count == alive.count)
        try #require(alive.contains("p0"))

        // On one sandbox at once: start, execs, states, ps; then the state is what they did.
        try rt.ok(["start", "p0"])
        var commands: [[String]] = (0..<4).map { ["exec", "p0", "sh", "-c", "echo exec-\($0)"] }
        commands += (0..<3).map { _ in ["state", "p0"] } + [["ps", "p0"], ["list"], ["events", "--stats", "p0"]]
        let results = try rt.concurrently(commands)
        for (command, result) in zip(commands, results) { #expect(result.status == 0, "\(command): \(result)") }
        for index in 0..<4 { #expect(results[index].stdout == "exec-\(index)\n") }
        #expect(try rt.state("p0")?.status == "running")

        let deleted = try rt.concurrently(made.map { ["delete", "--force", $0] })
        for (id, result) in zip(made, deleted) { #expect(result.status == 0, "delete \(id): \(result)") }
        #expect(rt.ids().isEmpty)
        var after = rt.footprint()
        for _ in 0..<25 where after != before {
            usleep(200_000)
            after = rt.footprint()
        }
        print("runtime concurrency: before \(before); after \(after)")
        #expect(after == before)
    }

    @Test("50 create/start/delete cycles leak no fd, process, mount, interface or state file")
    func cycles() throws {
        let rt = RuntimeHarness("cycles")
        let bundle = try rt.bundle("true", ["true"])
        let before = rt.footprint()
        for cycle in 0..<50 {
            let id = "cycle\(cycle)"
            try rt.ok(["create", "--bundle", bundle, id])
            try rt.ok(["start", id])
            #expect(try rt.waitFor(id, "stopped"), "\(id) did not stop")
            try rt.ok(["delete", id])
        }
        var after = rt.footprint()
        for _ in 0..<25 where after != before {
            usleep(200_000)
            after = rt.footprint()
        }
        print("runtime 50 cycles: before \(before); after \(after)")
        #expect(after == before)
    }

    @Test("a container in a network namespace with a veth has its address and reaches the veth's peer")
    func networkNamespace() throws {
        let rt = RuntimeHarness("netns")
        let sandbox = "kvmrun-e2e-\(getpid())-ns", peer = "kvmrun-e2e-\(getpid())-peer"
        let setUp = """
            ip netns add \(sandbox) && ip netns add \(peer) && ip -n \(sandbox) link set lo up &&
            ip -n \(peer) link add vpeer type veth peer name eth0 netns \(sandbox) &&
            ip -n \(sandbox) link set eth0 mtu 1400 up && ip -n \(sandbox) addr add 10.88.0.5/16 dev eth0 &&
            ip -n \(sandbox) route add default via 10.88.0.1 &&
            ip -n \(peer) link set vpeer mtu 1400 up && ip -n \(peer) addr add 10.88.0.1/16 dev vpeer
            """
        defer { _ = system("ip netns del \(sandbox) 2>/dev/null; ip netns del \(peer) 2>/dev/null") }
        try #require(system(setUp) == 0, "the CNI-like set-up with ip(8) failed")
        let received = rt.work + "/received"
        let listener = try ChildProcess(executable: "/bin/sh", arguments: [
            "-c", "exec ip netns exec \(peer) busybox nc -l -p 7777 > '\(received)'",
        ])
        defer { listener.signal(SIGKILL); _ = listener.waitForExit(timeoutMilliseconds: 5000) }
        let before = rt.footprint()   // with the listener's pipes open
        let bundle = try rt.bundle("net", ["sh", "-c", "ip -4 addr show; ip route; echo hello-peer | nc 10.88.0.1 7777"],
                                   environment: ["BUNDLE_NETNS": "/run/netns/\(sandbox)"])
        let result = try rt.kvmrun(["run", "--bundle", bundle, "n1"])
        print("runtime netns: container said: \(result.stdout)")
        #expect(result.status == 0, "\(result)")
        #expect(result.stdout.contains("10.88.0.5/16"), "\(result)")
        #expect(result.stdout.contains("default via 10.88.0.1"), "\(result)")
        _ = listener.waitForExit(timeoutMilliseconds: 10_000)
        #expect(E2E.readFile(received) == "hello-peer\n")
        // The sandbox's TAP and redirects are gone from the namespace; the veth is as it was.
        let links = String(decoding: try ChildProcess.output("/usr/sbin/ip", ["-n", sandbox, "-o", "link"]), as: UTF8.self)
        #expect(!links.contains("tap0_kvmrun") && links.contains("eth0"), "\(links)")
        #expect(rt.footprint() == before)
    }

    @Test("bad bundles fail with the reason and leave nothing")
    func badBundles() throws {
        let rt = RuntimeHarness("bad")
        let before = rt.footprint()
        let missing = try rt.kvmrun(["create", "--bundle", rt.work + "/nothing", "b1"])
        #expect(missing.status == 1 && missing.stderr.contains("config.json"), "\(missing)")
        let bundle = try rt.bundle("bad", ["true"])
        E2E.writeFile(bundle + "/config.json", Array(#"{"ociVersion": "1.2.0", "process": {"user": {"uid": 0, "gid": 0}, "args": 5, "cwd": "/"}, "root": {"path": "rootfs"}}"#.utf8))
        let bad = try rt.kvmrun(["create", "--bundle", bundle, "b2"])
        #expect(bad.status == 1 && bad.stderr.contains("process.args"), "\(bad)")
        let badID = try rt.kvmrun(["create", "--bundle", bundle, "../x"])
        #expect(badID.status != 0)
        #expect(rt.footprint() == before)
    }
}

extension String {
    func trimmingCharacters() -> String {
        String(drop { $0 == " " || $0 == "\n" }.reversed().drop { $0 == " " || $0 == "\n" }.reversed())
    }
}
