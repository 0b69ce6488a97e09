import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif
import CKVM
import Harness
import VMM

struct BenchBootCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "boot",
        abstract: "Boot the firmware kernel N times and print boot-to-init latency and VMM memory.",
        discussion: """
        Each run starts a VMM process and times it from spawn to the guest init's marker line
        (KVMRUN_INIT_OK) on the serial console; the VMM's resident memory outside guest RAM is
        read from /proc/PID/smaps at that moment; then the VMM is stopped with SIGTERM. With
        --compare qemu, runs of 'qemu-system-x86_64 -M microvm' on the same kernel, initrd,
        memory, vCPUs and command line alternate with kvmrun's. Print-only: nothing is asserted.
        """
    )

    @Option(help: "Boots per VMM.") var runs = 10
    @Option(help: ArgumentHelp("Peer to compare with (qemu).", valueName: "peer")) var compare: String?
    @Option(help: ArgumentHelp("Kernel to boot.", valueName: "path")) var kernel = "firmware/out/vmlinux"
    @Option(help: ArgumentHelp("Initrd to boot.", valueName: "path")) var initrd = "firmware/out/initramfs.cpio.gz"
    @Option(help: ArgumentHelp("Guest RAM.", valueName: "size")) var memory = "128M"
    @Option(help: "vCPUs.") var cpus = 1
    @Option(help: ArgumentHelp("Guest command line, the same for every VMM.", valueName: "string"))
    var cmdline = "console=ttyS0 reboot=k panic=-1 quiet kvmrun.hold=1"
    @Option(help: ArgumentHelp("QEMU executable.", valueName: "path")) var qemu = "/usr/bin/qemu-system-x86_64"
    @Option(help: ArgumentHelp("Seconds to wait for one boot.", valueName: "s")) var timeout = 120

    static let marker = "KVMRUN_INIT_OK"

    func validate() throws {
        guard runs >= 1 else { throw ValidationError("--runs must be at least 1") }
        if let compare, compare != "qemu" { throw ValidationError("--compare supports only 'qemu' (got '\(compare)')") }
        guard (try? SizeParser.parse(memory)) != nil else { throw ValidationError("--memory: '\(memory)' is not a size") }
        for (flag, path) in [("--kernel", kernel), ("--initrd", initrd)] where access(path, R_OK) != 0 {
            throw ValidationError("\(flag) \(path): not readable (run 'make firmware' first)")
        }
        if compare == "qemu", access(qemu, X_OK) != 0 {
            throw ValidationError("--qemu \(qemu): not executable (apt-get install qemu-system-x86)")
        }
    }

    func run() throws {
        // One line per run as it happens, also when stdout is a pipe.
        kvmrun_stdout_line_buffered()
        let memoryBytes = try SizeParser.parse(memory)
        let selfPath = executablePath()
        var kvmrun = Series(name: "kvmrun")
        var peer = Series(name: "qemu")
        print("bench boot: \(runs) run(s) each; kernel \(kernel), initrd \(initrd), \(memory), \(cpus) vCPU(s)")
        print("command line: \(cmdline)")
        for index in 1...runs {
            let ours = measure(executable: selfPath, arguments: [
                "vm", "run", "--kernel", kernel, "--initrd", initrd, "--memory", memory,
                "--cpus", String(cpus), "--boot-timer", "--console", "stdio", "--cmdline", cmdline,
            ], guestMemory: memoryBytes)
            kvmrun.add(ours)
            print("run \(index) kvmrun: \(ours.summary)")
            if compare == "qemu" {
                let theirs = measure(executable: qemu, arguments: [
                    "-M", "microvm,accel=kvm", "-cpu", "host", "-smp", String(cpus), "-m", String(memoryBytes >> 20),
                    "-nodefaults", "-no-user-config", "-display", "none", "-serial", "stdio", "-no-reboot",
                    "-kernel", kernel, "-initrd", initrd, "-append", cmdline,
                ], guestMemory: memoryBytes)
                peer.add(theirs)
                print("run \(index) qemu:   \(theirs.summary)")
            }
        }
        print("")
        print("boot to init, ms (spawn to init marker on the console)")
        print(kvmrun.line(\.bootToInit))
        if compare == "qemu" {
            print(peer.line(\.bootToInit))
            if let ours = median(kvmrun.values(\.bootToInit)), let theirs = median(peer.values(\.bootToInit)), theirs > 0 {
                print("ratio kvmrun/qemu (medians): \(format(ours / theirs, digits: 3))")
            }
        }
        print("kvmrun process start to first KVM_RUN, ms")
        print(kvmrun.line(\.firstRun))
        print("kvmrun process start to guest boot-timer write, ms")
        print(kvmrun.line(\.bootTimer))
        print("VMM resident memory outside guest RAM (RSS, including shared executable/library pages), MiB")
        print(kvmrun.line(\.residentMiB))
        if compare == "qemu" { print(peer.line(\.residentMiB)) }
        print("VMM anonymous resident memory outside guest RAM (this process alone), MiB")
        print(kvmrun.line(\.anonymousMiB))
        if compare == "qemu" { print(peer.line(\.anonymousMiB)) }
        if kvmrun.failures > 0 || peer.failures > 0 {
            print("failed runs: kvmrun \(kvmrun.failures), qemu \(peer.failures)")
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
                sample.anonymousMiB = Double(reading.anonymous) / Double(1 << 20)
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
        let stderr = String(decoding: child.stderrText, as: UTF8.self)
        for line in stderr.split(separator: "\n") where line.contains("boot-time ") {
            sample.firstRun = field("first_kvm_run_ms", in: line)
            sample.bootTimer = field("boot_timer_ms", in: line)
        }
        if sample.error != nil {
            let tail = String(decoding: child.stdoutText.suffix(400), as: UTF8.self)
            sample.error! += "; stderr: \(stderr.suffix(300)); console tail: \(tail)"
        }
        return sample
    }
}

struct Sample {
    var bootToInit: Double?
    var firstRun: Double?
    var bootTimer: Double?
    var residentMiB: Double?
    var anonymousMiB: Double?
    var error: String?

    var summary: String {
        if let error { return "FAILED: \(error)" }
        var parts = ["boot-to-init \(format(bootToInit))ms"]
        if let firstRun { parts.append("first KVM_RUN \(format(firstRun))ms") }
        if let bootTimer { parts.append("boot timer \(format(bootTimer))ms") }
        parts.append("RSS outside guest \(format(residentMiB))MiB (anonymous \(format(anonymousMiB))MiB)")
        return parts.joined(separator: ", ")
    }
}

struct Series {
    let name: String
    var samples: [Sample] = []
    var failures: Int { samples.filter { $0.error != nil }.count }

    mutating func add(_ sample: Sample) { samples.append(sample) }

    func values(_ key: KeyPath<Sample, Double?>) -> [Double] { samples.compactMap { $0[keyPath: key] } }

    func line(_ key: KeyPath<Sample, Double?>) -> String {
        let list = values(key).sorted()
        guard let low = list.first, let high = list.last, let middle = median(list) else {
            return "  \(name.padding(7)) n/a"
        }
        return "  \(name.padding(7)) min \(format(low))  median \(format(middle))  max \(format(high))  (n=\(list.count))"
    }
}

func median(_ values: [Double]) -> Double? {
    let sorted = values.sorted()
    guard !sorted.isEmpty else { return nil }
    let middle = sorted.count / 2
    return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}

func format(_ value: Double?, digits: Int = 1) -> String {
    guard let value else { return "n/a" }
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    let scaled = Int64((value * scale).rounded())
    let whole = scaled / Int64(scale)
    let fraction = String(scaled.magnitude % UInt64(scale))
    return "\(whole).\(String(repeating: "0", count: digits - fraction.count))\(fraction)"
}

func field(_ name: String, in line: Substring) -> Double? {
    for part in line.split(separator: " ") where part.hasPrefix(name + "=") {
        return Double(part.dropFirst(name.count + 1))
    }
    return nil
}

func executablePath() -> String {
    var buffer = [CChar](repeating: 0, count: 4096)
    let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
    guard count > 0 else { return CommandLine.arguments[0] }
    return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

extension String {
    func padding(_ width: Int) -> String { count >= width ? self : self + String(repeating: " ", count: width - count) }
}
