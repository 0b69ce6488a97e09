import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif
import CKVM
import Harness
import KVM
import Sys
import VMM

struct BenchBootCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "boot",
        abstract: "Boot the firmware kernel N times and print boot-to-init latency by phase, VMM CPU time and memory.",
        discussion: """
        Each run starts a VMM process and times it from spawn to the guest init's marker line
        (KVMRUN_INIT_OK) on the serial console; the VMM's memory outside guest RAM (RSS, PSS,
        anonymous) and the CPU time of its non-vCPU threads are read from /proc/PID at that
        moment; then the VMM is stopped with SIGTERM. With --compare qemu, runs of
        'qemu-system-x86_64 -M microvm' on the same kernel, initrd, memory, vCPUs and command
        line alternate with kvmrun's.

        Phases: spawn → first KVM_RUN and the CPU time to it come from kvmrun's boot-time line
        (QEMU's cannot be seen without tracing it). The guest's init (kvmrun.phases=1 on the
        command line) prints the kernel-clock stamps of "Run /init as init process" and of its
        marker, read from the kernel log after the marker, so the console output during the
        boot is the same with or without them. Spawn → guest clock zero is the marker's arrival
        less its guest stamp. --guest-initcalls adds initcall_debug (which slows the boot
        itself) and reports the slowest initcalls. Print-only: nothing is asserted.
        """
    )

    @Option(help: "Boots per VMM.") var runs = 10
    @Option(help: ArgumentHelp("Peer to compare with (qemu).", valueName: "peer")) var compare: String?
    @Option(help: ArgumentHelp("Kernel to boot.", valueName: "path")) var kernel = "firmware/out/vmlinux"
    @Option(help: ArgumentHelp("Initrd to boot.", valueName: "path")) var initrd = "firmware/out/initramfs.cpio.gz"
    @Option(help: ArgumentHelp("Guest RAM.", valueName: "size")) var memory = "128M"
    @Option(help: "vCPUs.") var cpus = 1
    @Option(help: ArgumentHelp("Guest command line, the same for every VMM.", valueName: "string"))
    var cmdline = "console=ttyS0 reboot=k panic=-1 quiet kvmrun.hold=1 kvmrun.phases=1"
    @Option(help: ArgumentHelp("QEMU executable.", valueName: "path")) var qemu = "/usr/bin/qemu-system-x86_64"
    @Option(help: ArgumentHelp("Seconds to wait for one boot.", valueName: "s")) var timeout = 120
    @Option(help: ArgumentHelp("Draw every run's phases into this SVG file.", valueName: "file.svg")) var plot: String?
    @Option(help: ArgumentHelp("Also read each VMM's memory this many seconds after the marker, the guest idle (its kvmrun.hold becomes s + 10): the cost of VMs side by side once booted (0 = off, at most 600).", valueName: "s"))
    var settle = 0
    @Flag(help: "Boot with initcall_debug and report the guest kernel's slowest initcalls (slows the boot).")
    var guestInitcalls = false

    static let marker = "KVMRUN_INIT_OK"
    static let phasesEnd = "KVMRUN_PHASES_END"

    func validate() throws {
        guard runs >= 1 else { throw ValidationError("--runs must be at least 1") }
        guard (0...600).contains(settle) else { throw ValidationError("--settle must be 0...600 seconds (got \(settle))") }
        if let compare, compare != "qemu" { throw ValidationError("--compare supports only 'qemu' (got '\(compare)')") }
        guard (try? SizeParser.parse(memory)) != nil else { throw ValidationError("--memory: '\(memory)' is not a size") }
        for (flag, path) in [("--kernel", kernel), ("--initrd", initrd)] where access(path, R_OK) != 0 {
            throw ValidationError("\(flag) \(path): not readable (run 'make firmware' first)")
        }
        if compare == "qemu", access(qemu, X_OK) != 0 {
            throw ValidationError("--qemu \(qemu): not executable (apt-get install qemu-system-x86)")
        }
    }

    var guestCommandLine: String {
        var line = cmdline
        if settle > 0 {
            // The guest must stay up past the settled reading: kvmrun.hold=N is the seconds the
            // init waits after its marker before it reboots.
            let words = line.split(separator: " ").filter { !$0.hasPrefix("kvmrun.hold=") }
            line = (words + ["kvmrun.hold=\(settle + 10)"]).joined(separator: " ")
        }
        // A larger log buffer keeps every initcall line of the boot.
        return guestInitcalls ? line + " initcall_debug log_buf_len=1M" : line
    }

    func run() throws {
        if let reason = KVMFlavour.detect().cannotRunLinuxReason {
            printError(reason)
            throw ExitCode(2)
        }
        // One line per run as it happens, also when stdout is a pipe.
        kvmrun_stdout_line_buffered()
        let memoryBytes = try SizeParser.parse(memory)
        let selfPath = executablePath()
        var kvmrun = Series(name: "kvmrun")
        var peer = Series(name: "qemu")
        print("bench boot: \(runs) run(s) each; kernel \(kernel), initrd \(initrd), \(memory), \(cpus) vCPU(s)")
        print("command line: \(guestCommandLine)")
        for index in 1...runs {
            let ours = measure(executable: selfPath, arguments: [
                "vm", "run", "--kernel", kernel, "--initrd", initrd, "--memory", memory,
                "--cpus", String(cpus), "--boot-timer", "--console", "stdio", "--cmdline", guestCommandLine,
            ], guestMemory: memoryBytes)
            kvmrun.add(ours)
            print("run \(index) kvmrun: \(ours.summary)")
            if compare == "qemu" {
                let theirs = measure(executable: qemu, arguments: [
                    "-M", "microvm,accel=kvm", "-cpu", "host", "-smp", String(cpus), "-m", String(memoryBytes >> 20),
                    "-nodefaults", "-no-user-config", "-display", "none", "-serial", "stdio", "-no-reboot",
                    // Thread names only ("CPU 0/KVM"), to tell vCPU threads from QEMU's own.
                    "-name", "bench,debug-threads=on",
                    "-kernel", kernel, "-initrd", initrd, "-append", guestCommandLine,
                ], guestMemory: memoryBytes)
                peer.add(theirs)
                print("run \(index) qemu:   \(theirs.summary)")
            }
        }
        let all = compare == "qemu" ? [kvmrun, peer] : [kvmrun]
        BootReport(series: all, initcalls: guestInitcalls, settleSeconds: settle, symbols: guestInitcalls ? KernelSymbols(path: kernel) : nil).print()
        if let plot {
            let title = "kvmrun bench boot: \(runs) run(s) per VMM, \(memory), \(cpus) vCPU(s)\(guestInitcalls ? ", initcall_debug" : "")"
            let svg = BootPlot(series: all, title: title).svg()
            do {
                try writeText(svg, to: plot)
                Swift.print("plot: \(plot)")
            } catch {
                printError("--plot \(plot): \(error)")
                throw ExitCode(1)
            }
        }
        if kvmrun.failures > 0 || peer.failures > 0 {
            Swift.print("failed runs: kvmrun \(kvmrun.failures), qemu \(peer.failures)")
            throw ExitCode(1)
        }
    }

    func measure(executable: String, arguments: [String], guestMemory: UInt64) -> Sample {
        var sample = Sample()
        let child: ChildProcess
        do {
            child = try ChildProcess(executable: executable, arguments: arguments)
        } catch {
            sample.error = "\(error)"
            return sample
        }
        if let seen = child.waitForStdout(containing: Self.marker, timeoutMilliseconds: timeout * 1000) {
            sample.bootToInit = Double(seen - child.spawnedAt) / 1_000_000
            if let reading = ProcessMemory.residentOutsideGuest(pid: child.pid, guestMemory: guestMemory) {
                sample.residentMiB = Double(reading.resident) / Double(1 << 20)
                sample.proportionalMiB = Double(reading.proportional) / Double(1 << 20)
                sample.anonymousMiB = Double(reading.anonymous) / Double(1 << 20)
            }
            let threads = ThreadCPU.threads(pid: child.pid)
            if !threads.isEmpty {
                let own = threads.filter { !Self.isVCPUThread($0.name) }
                sample.vmmThreadsCPU = Double(own.reduce(0) { $0 + $1.nanoseconds }) / 1_000_000
            }
            // The guest's stamps come right after the marker (the init reads its kernel log).
            _ = child.waitForStdout(containing: Self.phasesEnd, timeoutMilliseconds: 10_000)
            if settle > 0 {
                // Waits with the console drained meanwhile (a string no guest prints).
                _ = child.waitForStdout(containing: "\u{1}settle\u{1}", timeoutMilliseconds: settle * 1000)
                if let reading = ProcessMemory.residentOutsideGuest(pid: child.pid, guestMemory: guestMemory) {
                    sample.settledResidentMiB = Double(reading.resident) / Double(1 << 20)
                    sample.settledProportionalMiB = Double(reading.proportional) / Double(1 << 20)
                }
            }
        } else {
            sample.error = "no \(Self.marker) within \(timeout) s"
        }
        child.signal(SIGTERM)
        if child.waitForExit(timeoutMilliseconds: 10_000) == nil {
            child.signal(SIGKILL)
            _ = child.waitForExit(timeoutMilliseconds: 5_000)
        }
        child.drain(timeoutMilliseconds: 1000)
        let console = String(decoding: child.stdoutText, as: UTF8.self)
        sample.parseGuestLines(console)
        if sample.error == nil, sample.guestMarker == nil {
            // Say why the guest phases are missing instead of leaving them n/a silently.
            let phases = console.split(whereSeparator: \.isNewline).first { $0.contains("KVMRUN_PHASES") }
            sample.note = phases.map { "guest stamps missing: '\($0)'" } ?? "no KVMRUN_PHASES line (an initramfs without kvmrun.phases?)"
        }
        let stderr = String(decoding: child.stderrText, as: UTF8.self)
        for line in stderr.split(separator: "\n") where line.contains("boot-time ") {
            sample.parseBootTime(line, spawnedAtMilliseconds: Double(child.spawnedAt) / 1_000_000)
        }
        if sample.error != nil {
            let tail = String(decoding: child.stdoutText.suffix(400), as: UTF8.self)
            sample.error! += "; stderr: \(stderr.suffix(300)); console tail: \(tail)"
        }
        return sample
    }

    /// kvmrun names its vCPU threads "vcpu N"; QEMU with debug-threads=on "CPU N/KVM".
    static func isVCPUThread(_ name: String) -> Bool {
        name.hasPrefix("vcpu ") || name.hasSuffix("/KVM")
    }
}

func executablePath() -> String {
    var buffer = [CChar](repeating: 0, count: 4096)
    let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
    guard count > 0 else { return CommandLine.arguments[0] }
    return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// Writes `text` to `path` (created or truncated, mode 0644).
func writeText(_ text: String, to path: String) throws(SystemError) {
    let fd = try sys("open \(path)") { open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644) }
    defer { close(fd) }
    var bytes = Array(text.utf8)
    var done = 0
    while done < bytes.count {
        // SAFETY: writes the remaining bytes of the local array.
        let count = try sys("write \(path)") { bytes.withUnsafeMutableBytes { write(fd, $0.baseAddress! + done, $0.count - done) } }
        done += count
    }
}
