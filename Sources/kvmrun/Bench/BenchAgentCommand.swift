import AgentClient
import AgentHost
import AgentProtocol
import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif
import CKVM
import Harness
import Sys

struct BenchAgentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent",
        abstract: "Measure the guest agent: call round trip, container start to first output, memory.",
        discussion: """
        Boots the firmware kernel with the agent initramfs and a copy of the busybox container
        image as /dev/vda, connects over hybrid vsock, then times: Health.Check round trips
        (--calls of them), and --runs times CreateContainer + StartContainer of 'echo hello' up
        to the first byte ReadStdout returns (the container is waited for and removed between
        runs). Prints medians, the agent's VmRSS and the guest's used memory (MemTotal -
        MemAvailable) with the agent idle, read through GetGuestDetails. Print-only.
        """
    )

    @Option(help: "Container starts to time.") var runs = 10
    @Option(help: "Health.Check calls to time.") var calls = 200
    @Option(help: ArgumentHelp("Kernel to boot.", valueName: "path")) var kernel = "firmware/out/vmlinux"
    @Option(help: ArgumentHelp("Agent initramfs.", valueName: "path")) var initrd = "firmware/out/agent-initramfs.cpio.gz"
    @Option(help: ArgumentHelp("Container root file system image (ext4).", valueName: "path")) var rootfs = "firmware/out/container-rootfs.ext4"
    @Option(help: ArgumentHelp("The agent binary, for its size.", valueName: "path")) var agentBinary = ".build/release/kvmrun-agent"
    @Option(help: ArgumentHelp("Guest RAM.", valueName: "size")) var memory = "256M"
    @Option(help: ArgumentHelp("Directory for the disk copy and the vsock socket.", valueName: "dir")) var directory = "/tmp"
    @Option(help: ArgumentHelp("Seconds to wait for the agent to answer.", valueName: "s")) var timeout = 120
    @Option(help: ArgumentHelp("Milliseconds between the first answer and the idle reading.", valueName: "ms")) var settle = 3000

    func validate() throws {
        guard runs >= 1, calls >= 1 else { throw ValidationError("--runs and --calls must be at least 1") }
        guard (0...600_000).contains(settle) else { throw ValidationError("--settle must be 0...600000 ms") }
        for (flag, path) in [("--kernel", kernel), ("--initrd", initrd), ("--rootfs", rootfs)] where access(path, R_OK) != 0 {
            throw ValidationError("\(flag) \(path): not readable (run 'make firmware' first)")
        }
    }

    func run() throws {
        kvmrun_stdout_line_buffered()
        let disk = "\(directory)/kvmrun-bench-agent-\(getpid()).ext4"
        let socket = "\(directory)/kvmrun-bench-agent-\(getpid()).vsock"
        try DiskImage.copy(rootfs, to: disk)
        defer {
            unlink(disk)
            unlink(socket)
        }
        var size = stat()
        let binarySize = stat(agentBinary, &size) == 0 ? "\(size.st_size) bytes" : "n/a (\(agentBinary) not found)"
        print("bench agent: kernel \(kernel), initrd \(initrd), rootfs copy of \(rootfs), \(memory), 1 vCPU")
        print("agent binary: \(binarySize)")
        let vm = try ChildProcess(executable: executablePath(), arguments: [
            "vm", "run", "--kernel", kernel, "--initrd", initrd, "--memory", memory, "--cpus", "1",
            "--cmdline", "console=ttyS0 reboot=k panic=-1 quiet", "--console", "none",
            "--vsock", "cid=3,uds=\(socket)", "--disk", "path=\(disk)",
        ])
        defer {
            if vm.waitForExit(timeoutMilliseconds: 0) == nil {
                vm.signal(SIGTERM)
                if vm.waitForExit(timeoutMilliseconds: 10_000) == nil { vm.signal(SIGKILL) }
            }
        }
        let (agent, ready) = try connect(socket: socket, vm: vm)
        print("spawn to first Health.Check answer: \(format(ready)) ms")
        let atBoot = try agent.agentFigures()
        usleep(UInt32(settle) * 1000)
        let idle = try agent.agentFigures()

        // Round trip of a trivial call.
        for _ in 0..<10 { _ = try agent.client.check() }
        var roundTrips: [Double] = []
        for _ in 0..<calls {
            let start = MonotonicClock.now
            _ = try agent.client.check()
            roundTrips.append(Double(MonotonicClock.now - start) / 1000)
        }

        // CreateContainer to the container's first output byte.
        var firstBytes: [Double] = []
        for index in 1...runs {
            let id = "bench\(index)"
            let mountPoint = "/run/kata-containers/\(id)/rootfs"
            let spec = ContainerSpecs.spec(rootfs: mountPoint, args: ["echo", "hello"])
            let start = MonotonicClock.now
            try agent.createContainer(id, spec: spec, storages: [ContainerSpecs.blockStorage(device: "/dev/vda", mountPoint: mountPoint)])
            try agent.start(id)
            let first = try agent.read(id, length: 1)
            let elapsed = Double(MonotonicClock.now - start) / 1_000_000
            guard first == Array("h".utf8) else { throw ValidationError("run \(index): first output byte \(first), expected \"h\"") }
            firstBytes.append(elapsed)
            _ = try agent.readAll(id)
            _ = try agent.wait(id)
            try agent.remove(id)
            print("run \(index): CreateContainer to first output byte \(format(elapsed)) ms")
        }
        let after = try agent.agentFigures()

        print("")
        print("Health.Check round trip, µs: \(summary(roundTrips)) (n=\(calls))")
        print("CreateContainer + StartContainer to the first output byte, ms: \(summary(firstBytes)) (n=\(runs))")
        print("guest /proc/meminfo, KiB: at the first answer / \(settle) ms later, idle / after the runs")
        for key in ["MemTotal", "MemFree", "MemAvailable", "Buffers", "Cached", "Shmem", "Slab", "SReclaimable", "SUnreclaim", "KernelStack", "PageTables", "AnonPages", "Percpu"] {
            let name = "meminfo_\(key)_kib"
            print("  \(key.padding(13)) \(atBoot[name].map(String.init) ?? "n/a") / \(idle[name].map(String.init) ?? "n/a") / \(after[name].map(String.init) ?? "n/a")")
        }
        print("  per-CPU free lists (/proc/zoneinfo pagesets) \(atBoot["pcp_free_kib"].map(String.init) ?? "n/a") / \(idle["pcp_free_kib"].map(String.init) ?? "n/a") / \(after["pcp_free_kib"].map(String.init) ?? "n/a")")
        print("guest used memory at the first answer: \(mib(atBoot["guest_used_kib"])) MiB")
        print("agent VmRSS idle (\(settle) ms after the first answer): \(mib(idle["vmrss_kib"])) MiB (anonymous \(mib(idle["rss_anon_kib"])) MiB, the rest pages of its binary); after the runs: \(mib(after["vmrss_kib"])) MiB (anonymous \(mib(after["rss_anon_kib"])) MiB)")
        print("guest used memory (MemTotal - MemAvailable) idle (\(settle) ms after the first answer): \(mib(idle["guest_used_kib"])) MiB; after the runs: \(mib(after["guest_used_kib"])) MiB")
        try? agent.client.destroySandbox()
        agent.client.close()
        if let status = vm.waitForExit(timeoutMilliseconds: 30_000) { print("VM ended after DestroySandbox, kvmrun status \(status)") }
    }

    func connect(socket: String, vm: ChildProcess) throws -> (AgentDriver, Double) {
        let deadline = MonotonicClock.now + Int64(timeout) * 1_000_000_000
        var last = "nothing yet"
        while MonotonicClock.now < deadline {
            if let status = vm.waitForExit(timeoutMilliseconds: 0) {
                vm.drain(timeoutMilliseconds: 1000)
                throw ValidationError("kvmrun exited \(status) before the agent answered: \(String(decoding: vm.stderrText, as: UTF8.self))")
            }
            if access(socket, F_OK) == 0 {
                do {
                    let agent = AgentDriver(client: try AgentClient.connect(hybridVsock: socket))
                    _ = try agent.client.check(timeout: .after(.seconds(10)))
                    return (agent, Double(MonotonicClock.now - Int64(vm.spawnedAt)) / 1_000_000)
                } catch {
                    last = "\(error)"
                }
            }
            usleep(20_000)
        }
        throw ValidationError("the agent did not answer within \(timeout) s (last error: \(last))")
    }

    func summary(_ values: [Double]) -> String {
        let sorted = values.sorted()
        return "min \(format(sorted.first))  median \(format(median(sorted)))  max \(format(sorted.last))"
    }

    func mib(_ kib: UInt64?) -> String { format(kib.map { Double($0) / 1024 }, digits: 2) }
}
