import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif
import CKVM
import Harness
import KVM
import VMM

struct BenchIOCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "io",
        abstract: "Measure virtio-blk and virtio-net throughput inside the guest.",
        discussion: """
        Boots the firmware kernel with one raw disk image and one TAP interface and runs the
        guest tool 'iobench' (firmware/initramfs/tests/iobench.sh): sequential O_DIRECT write
        and read of --mib MiB on /dev/vda, then TCP guest→host and host→guest of --mib MiB each
        against a peer in this process on 172.30.0.1. All rates are timed by the guest. With
        --compare qemu, 'qemu-system-x86_64 -M microvm' runs alternate with kvmrun's on the same
        image and TAP (virtio-mmio devices, vhost off: the same user-space data path kvmrun
        has). Needs root (it creates the TAP device, and removes it at the end). Print-only.
        """
    )

    @Option(help: "Runs per VMM.") var runs = 3
    @Option(help: ArgumentHelp("Peer to compare with (qemu).", valueName: "peer")) var compare: String?
    @Option(help: "MiB moved per measurement.") var mib = 64
    @Option(help: ArgumentHelp("Kernel to boot.", valueName: "path")) var kernel = "firmware/out/vmlinux"
    @Option(help: ArgumentHelp("Initrd to boot.", valueName: "path")) var initrd = "firmware/out/initramfs.cpio.gz"
    @Option(help: ArgumentHelp("Guest RAM.", valueName: "size")) var memory = "256M"
    @Option(help: ArgumentHelp("TAP device to create for the run.", valueName: "name")) var tap = "kvmrunbench0"
    @Option(help: ArgumentHelp("Directory for the disk image.", valueName: "dir")) var directory = "/tmp"
    @Option(help: ArgumentHelp("QEMU executable.", valueName: "path")) var qemu = "/usr/bin/qemu-system-x86_64"
    @Option(help: ArgumentHelp("Seconds to wait for one run.", valueName: "s")) var timeout = 600

    static let metrics = ["blk_write", "blk_read", "tcp_guest_to_host", "tcp_host_to_guest"]
    static let hostAddress = "172.30.0.1"
    static let guestMAC = "52:54:00:12:34:56"

    func validate() throws {
        guard runs >= 1, mib >= 1 else { throw ValidationError("--runs and --mib must be at least 1") }
        if let compare, compare != "qemu" { throw ValidationError("--compare supports only 'qemu' (got '\(compare)')") }
        guard (try? SizeParser.parse(memory)) != nil else { throw ValidationError("--memory: '\(memory)' is not a size") }
        for (flag, path) in [("--kernel", kernel), ("--initrd", initrd)] where access(path, R_OK) != 0 {
            throw ValidationError("\(flag) \(path): not readable (run 'make firmware' first)")
        }
        if compare == "qemu", access(qemu, X_OK) != 0 {
            throw ValidationError("--qemu \(qemu): not executable (apt-get install qemu-system-x86)")
        }
        guard geteuid() == 0 else { throw ValidationError("bench io needs root: it creates the TAP device '\(tap)'") }
    }

    func run() throws {
        if let reason = KVMFlavour.detect().cannotRunLinuxReason {
            printError(reason)
            throw ExitCode(2)
        }
        kvmrun_stdout_line_buffered()
        let image = "\(directory)/kvmrun-bench-io-\(getpid()).img"
        try createImage(image, bytes: (mib + 1) << 20)
        defer { unlink(image) }
        let network = try BenchTap(name: tap, hostAddress: Self.hostAddress)
        defer { network.remove() }
        let peer = try BenchTCPPeer(address: Self.hostAddress, sinkPort: 5201, sourcePort: 5202, bytes: mib << 20)
        try peer.start()

        let cmdline = "console=ttyS0 reboot=k panic=-1 quiet kvmrun.script=iobench kvmrun.iobench_mib=\(mib)"
        print("bench io: \(runs) run(s) each; \(mib) MiB per measurement; disk \(image); tap \(tap)")
        var ours: [[String: Double]] = []
        var theirs: [[String: Double]] = []
        for index in 1...runs {
            let sample = measure(executable: executablePath(), arguments: [
                "vm", "run", "--kernel", kernel, "--initrd", initrd, "--memory", memory, "--cpus", "1",
                "--disk", "path=\(image),id=bench", "--net", "tap=\(tap),mac=\(Self.guestMAC)", "--cmdline", cmdline,
            ])
            print("run \(index) kvmrun: \(describe(sample))")
            ours.append(sample)
            if compare == "qemu" {
                let memoryMiB = try SizeParser.parse(memory) >> 20
                let sample = measure(executable: qemu, arguments: [
                    "-M", "microvm,accel=kvm,acpi=off", "-cpu", "host", "-smp", "1", "-m", String(memoryMiB),
                    "-nodefaults", "-no-user-config", "-display", "none", "-serial", "stdio", "-no-reboot",
                    "-drive", "id=bench,file=\(image),format=raw,if=none",
                    "-device", "virtio-blk-device,drive=bench",
                    "-netdev", "tap,id=net0,ifname=\(tap),script=no,downscript=no,vhost=off",
                    "-device", "virtio-net-device,netdev=net0,mac=\(Self.guestMAC)",
                    "-kernel", kernel, "-initrd", initrd, "-append", cmdline,
                ])
                print("run \(index) qemu:   \(describe(sample))")
                theirs.append(sample)
            }
        }
        print("")
        print("MiB/s, medians over \(runs) run(s) (higher is better)")
        var failed = false
        for metric in Self.metrics {
            let mine = median(ours.compactMap { $0[metric] })
            var line = "  \(metric.padding(18)) kvmrun \(format(mine))"
            if compare == "qemu" {
                let peer = median(theirs.compactMap { $0[metric] })
                line += "  qemu \(format(peer))"
                if let mine, let peer, peer > 0 { line += "  ratio kvmrun/qemu \(format(mine / peer, digits: 2))" }
                failed = failed || peer == nil
            }
            failed = failed || mine == nil
            print(line)
        }
        if failed { throw ExitCode(1) }
    }

    /// Runs one VM to completion and returns the guest's IOBENCH figures by metric.
    func measure(executable: String, arguments: [String]) -> [String: Double] {
        guard let child = try? ChildProcess(executable: executable, arguments: arguments) else { return [:] }
        _ = child.waitForStdout(containing: "KVMRUN_SCRIPT_EXIT=", timeoutMilliseconds: timeout * 1000)
        if child.waitForExit(timeoutMilliseconds: 20_000) == nil {
            child.signal(SIGTERM)
            if child.waitForExit(timeoutMilliseconds: 10_000) == nil {
                child.signal(SIGKILL)
                _ = child.waitForExit(timeoutMilliseconds: 5_000)
            }
        }
        child.drain(timeoutMilliseconds: 1000)
        let console = String(decoding: child.stdoutText, as: UTF8.self)
        var result: [String: Double] = [:]
        // The serial console ends lines with "\r\n", a single Character in Swift.
        for line in console.split(whereSeparator: { $0 == "\n" || $0 == "\r\n" }) where line.hasPrefix("IOBENCH ") {
            for metric in Self.metrics {
                if let value = field(metric + "_mibps", in: line) { result[metric] = value }
            }
        }
        if result.count < Self.metrics.count {
            let errors = String(decoding: child.stderrText.suffix(300), as: UTF8.self)
            print("  (incomplete run; console tail: \(console.suffix(600)); stderr: \(errors))")
        }
        return result
    }

    func describe(_ sample: [String: Double]) -> String {
        Self.metrics.map { "\($0) \(format(sample[$0]))" }.joined(separator: ", ")
    }

    /// A raw image of `bytes`, allocated up front so neither VMM pays for block allocation.
    func createImage(_ path: String, bytes: Int) throws {
        let fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw ValidationError("bench io: cannot create \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let result = posix_fallocate(fd, 0, off_t(bytes))
        guard result == 0 else {
            unlink(path)
            throw ValidationError("bench io: cannot allocate \(bytes >> 20) MiB for \(path): \(String(cString: strerror(result)))")
        }
    }
}
