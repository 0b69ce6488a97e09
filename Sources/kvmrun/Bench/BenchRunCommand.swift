import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif
import CKVM
import Harness
import Sys

struct BenchRunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Time 'kvmrun run' of busybox true end to end (and runc on the same bundle), by phase; idle sandbox memory.",
        discussion: """
        Bundles are written with scripts/busybox-bundle (the firmware build's busybox tree). Each
        round times, in this order: a bare boot of the firmware kernel with the test initramfs
        ('vm run', spawn to its init's marker line); 'kvmrun run' of 'true' from spawn to exit,
        with its phases from its --debug JSON log (process start and rootfs image → VMM spawned →
        agent ready → container created → started → exited → deleted); 'kvmrun run' of 'echo
        hi' from spawn to the first byte of output; with --compare runc, 'runc run' of the same
        'true' bundle. Then one sandbox is left idle (--settle ms) and the PSS of its VMM process
        (the VMM plus the guest pages it touched) and of the container's relay are read from
        /proc/PID/smaps_rollup. Medians (min–max) and ratios; print-only.
        """
    )

    @Option(help: "Rounds.") var runs = 5
    @Option(help: ArgumentHelp("Peer to compare with (runc).", valueName: "peer")) var compare: String?
    @Option(help: ArgumentHelp("runc executable.", valueName: "path")) var runc = "/usr/sbin/runc"
    @Option(help: ArgumentHelp("The bundle maker.", valueName: "path")) var bundleScript = "scripts/busybox-bundle"
    @Option(help: ArgumentHelp("Kernel for the bare boot.", valueName: "path")) var kernel = "firmware/out/vmlinux"
    @Option(help: ArgumentHelp("Test initramfs for the bare boot.", valueName: "path")) var initrd = "firmware/out/initramfs.cpio.gz"
    @Option(help: ArgumentHelp("Directory for the bundles and the runtime roots.", valueName: "dir")) var directory = "/tmp"
    @Option(help: ArgumentHelp("Milliseconds an idle sandbox settles before its memory is read.", valueName: "ms")) var settle = 3000
    @Option(help: ArgumentHelp("Seconds one run may take.", valueName: "s")) var timeout = 180

    func validate() throws {
        guard runs >= 1 else { throw ValidationError("--runs must be at least 1") }
        guard compare == nil || compare == "runc" else { throw ValidationError("--compare: only runc is known") }
        for (flag, path) in [("--kernel", kernel), ("--initrd", initrd), ("--bundle-script", bundleScript)] where access(path, R_OK) != 0 {
            throw ValidationError("\(flag) \(path): not readable (run 'make firmware' first)")
        }
    }

    func run() throws {
        kvmrun_stdout_line_buffered()
        let work = "\(directory)/kvmrun-bench-run-\(getpid())"
        let root = work + "/root"
        defer { _ = system("rm -rf '\(work)'") }
        for (name, args) in [("true", "true"), ("echo", "echo hi"), ("idle", "sleep 600")] {
            guard system("'\(bundleScript)' '\(work)/\(name)' \(args)") == 0 else {
                throw ValidationError("\(bundleScript) \(work)/\(name) failed")
            }
        }
        let me = executablePath()
        print("bench run: \(runs) rounds; kvmrun \(me), root \(root); bundle busybox 'true'\(compare == nil ? "" : "; peer runc \(runc)")")
        var samples: [String: [Double]] = [:]
        for round in 0..<runs {
            samples["bare boot to init", default: []].append(try bareBoot(me))
            let log = "\(work)/run-\(round).log"
            let (total, _) = try timed(me, ["--root", root, "--debug", "--log-format", "json", "--log", log,
                                            "run", "--bundle", work + "/true", "bench-\(round)"])
            samples["kvmrun run true", default: []].append(total.ms)
            for (name, value) in phases(log: log, spawnedAt: total.spawnedAt) { samples[name, default: []].append(value) }
            let (_, firstOutput) = try timed(me, ["--root", root, "run", "--bundle", work + "/echo", "bench-echo-\(round)"], marker: "hi")
            if let firstOutput { samples["kvmrun run echo: first output", default: []].append(firstOutput) }
            if compare == "runc" {
                let (peer, _) = try timed(runc, ["--root", work + "/runc", "run", "--bundle", work + "/true", "bench-runc-\(round)"])
                if peer.status == 0 { samples["runc run true", default: []].append(peer.ms) } else { print("runc run failed (status \(peer.status)): \(peer.stderr)") }
            }
        }
        let order = ["bare boot to init", "kvmrun run true", "  start, rootfs image → VMM spawned", "  VMM spawned → agent ready",
                     "  agent ready → container created", "  created → started", "  started → exited", "  exited → deleted",
                     "kvmrun run echo: first output", "runc run true"]
        print("median (min–max), ms:")
        for name in order {
            guard let values = samples[name], let middle = median(values) else { continue }
            print("  \(name.padding(40)) \(format(middle)) (\(format(values.min()!))–\(format(values.max()!)))")
        }
        if let run = samples["kvmrun run true"].flatMap(median), let bare = samples["bare boot to init"].flatMap(median) {
            print("runtime overhead over a bare boot to init: \(format((run - bare) / bare * 100)) % (target ≤ 20 %)")
            if let peer = samples["runc run true"].flatMap(median) { print("kvmrun run / runc run: \(format(run / peer))×") }
        }
        try idleMemory(me, root: root, bundle: work + "/idle")
    }

    struct Timing { var ms: Double; var spawnedAt: UInt64; var status: Int32; var stderr: String }

    /// Runs a command to its end; with `marker`, also the ms to the stdout line holding it.
    func timed(_ executable: String, _ arguments: [String], marker: String? = nil) throws -> (Timing, Double?) {
        let child = try ChildProcess(executable: executable, arguments: arguments)
        var first: Double?
        if let marker, let at = child.waitForStdout(containing: marker, timeoutMilliseconds: timeout * 1000) {
            first = Double(at - child.spawnedAt) / 1e6
        }
        let status = child.waitForExit(timeoutMilliseconds: timeout * 1000)
        let end = kvmrun_monotonic_ns()
        if status == nil { child.signal(SIGKILL); _ = child.waitForExit(timeoutMilliseconds: 5000) }
        child.drain(timeoutMilliseconds: 1000)
        let timing = Timing(ms: Double(end - child.spawnedAt) / 1e6, spawnedAt: child.spawnedAt, status: status ?? -1,
                            stderr: String(decoding: child.stderrText.suffix(2000), as: UTF8.self))
        guard status == 0 || executable != executablePath() else {
            throw ValidationError("kvmrun \(arguments.joined(separator: " ")) failed (status \(timing.status)): \(timing.stderr)")
        }
        return (timing, first)
    }

    /// The firmware kernel with the test initramfs, spawn to its init's marker line.
    func bareBoot(_ me: String) throws -> Double {
        let child = try ChildProcess(executable: me, arguments: [
            "vm", "run", "--kernel", kernel, "--initrd", initrd, "--memory", "256M", "--cpus", "1",
            "--cmdline", "console=ttyS0 reboot=k panic=-1 quiet kvmrun.hold=1",
        ])
        defer { child.signal(SIGKILL); _ = child.waitForExit(timeoutMilliseconds: 5000) }
        guard let at = child.waitForStdout(containing: BenchBootCommand.marker, timeoutMilliseconds: timeout * 1000) else {
            throw ValidationError("the bare boot did not reach its init within \(timeout) s")
        }
        return Double(at - child.spawnedAt) / 1e6
    }

    /// Phase durations from a run's JSON log lines ({"msg":"phase NAME","at_ms":"…"}).
    func phases(log: String, spawnedAt: UInt64) -> [(String, Double)] {
        var at: [String: Double] = [:]
        for line in (readTextFile(log) ?? "").split(separator: "\n") where line.contains("\"msg\":\"phase ") {
            guard let name = field("phase", String(line)), let value = field("at_ms", String(line)).flatMap(Double.init) else { continue }
            at[name] = value
        }
        let start = Double(spawnedAt) / 1e6
        let steps = [("  start, rootfs image → VMM spawned", "", "vmm-spawn"), ("  VMM spawned → agent ready", "vmm-spawn", "agent-ready"),
                     ("  agent ready → container created", "agent-ready", "created"), ("  created → started", "created", "started"),
                     ("  started → exited", "started", "exited"), ("  exited → deleted", "exited", "deleted")]
        return steps.compactMap { name, from, to in
            guard let end = at[to], let begin = from.isEmpty ? start : at[from] else { return nil }
            return (name, end - begin)
        }
    }

    func field(_ name: String, _ line: String) -> String? {
        let parts = line.split(separator: "\"\(name)\":\"", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2 else { return nil }
        return String(parts[1].prefix { $0 != "\"" })
    }

    /// One idle sandbox: PSS of its VMM (with the guest pages it touched) and of its relay.
    func idleMemory(_ me: String, root: String, bundle: String) throws {
        let id = "bench-idle"
        _ = try timed(me, ["--root", root, "run", "--detach", "--bundle", bundle, id])
        defer { _ = try? timed(me, ["--root", root, "delete", "--force", id]) }
        usleep(UInt32(settle) * 1000)
        let vmm = processes { $0.contains("vm\0run\0") && $0.contains(root + "/") }
        let relay = processes { $0.contains("\0relay\0") }
        func pss(_ pids: [pid_t]) -> Double {
            pids.compactMap { pid in
                (readTextFile("/proc/\(pid)/smaps_rollup") ?? "").split(separator: "\n").first { $0.hasPrefix("Pss:") }
                    .flatMap { $0.split(separator: " ").compactMap { Double($0) }.first }
            }.reduce(0, +) / 1024
        }
        let vmmPSS = pss(vmm), relayPSS = pss(relay)
        print("idle sandbox after \(settle) ms: VMM PSS \(format(vmmPSS)) MiB (VMM + guest pages touched), relay PSS \(format(relayPSS)) MiB, total \(format(vmmPSS + relayPSS)) MiB (target ≤ 40 MiB)")
    }

    func processes(_ matching: (String) -> Bool) -> [pid_t] {
        guard let proc = opendir("/proc") else { return [] }
        defer { closedir(proc) }
        var found: [pid_t] = []
        while let entry = readdir(proc) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard let pid = pid_t(name), let cmdline = readTextFile("/proc/\(pid)/cmdline") else { continue }
            if matching(cmdline) { found.append(pid) }
        }
        return found
    }

    func format(_ value: Double) -> String {
        let scaled = (value * 10).rounded() / 10
        return "\(scaled)"
    }
}
