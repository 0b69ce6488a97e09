import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif
import CKVM
import Harness
import VMM

/// `kvmrun bench soak`: boots the firmware kernel many times in a cycle of configurations and
/// counts how each boot ended, to measure boot reliability (issue 7) against QEMU microvm.
struct BenchSoakCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "soak",
        abstract: "Boot the firmware kernel N times per VMM and count boots that faulted or stalled.",
        discussion: """
        Boot i uses 1 vCPU when i is even and 2 when odd; every second pair adds devices (a raw \
        disk, a TAP, vsock, and for kvmrun a virtio-mem region plugged at boot); every second \
        group of four is ended by SIGTERM a moment after the init marker instead of by the \
        guest's own 'reboot -f'. Each boot is classified: reached init (marker seen, ended as \
        expected), faulted (triple fault, kernel panic or oops), stalled (no marker, or no end, \
        within --timeout), other error. The last lines are one per VMM: \
        'soak: VMM N boots, A reached init, F faulted, S stalled, E other errors'. \
        Devices need root (the TAP). Print-only; the exit status is 1 when any boot did not \
        reach init.
        """
    )

    @Option(help: "Boots per VMM.") var runs = 200
    @Option(help: ArgumentHelp("Peer to compare with (qemu).", valueName: "peer")) var compare: String?
    @Option(help: ArgumentHelp("Kernel to boot.", valueName: "path")) var kernel = "firmware/out/vmlinux"
    @Option(help: ArgumentHelp("Initrd to boot.", valueName: "path")) var initrd = "firmware/out/initramfs.cpio.gz"
    @Option(help: ArgumentHelp("Seconds to wait for the marker, and then for the end.", valueName: "s"))
    var timeout = 60
    @Option(help: ArgumentHelp("TAP device the runs with devices share (created for the soak).", valueName: "name"))
    var tap = "kvmrunsoak0"
    @Option(help: ArgumentHelp("Directory for the disk image and vsock sockets.", valueName: "dir"))
    var directory = "/tmp"
    @Option(help: ArgumentHelp("QEMU executable.", valueName: "path")) var qemu = "/usr/bin/qemu-system-x86_64"
    @Option(help: ArgumentHelp("Guest command line (the end-to-end tests' by default: a full console log).", valueName: "string"))
    var cmdline = "console=ttyS0 reboot=k panic=-1"
    @Flag(help: "Print every boot's console tail, not only those of failed boots.") var verbose = false
    @Option(help: ArgumentHelp("Shell command run after each boot that did not reach init (e.g. to save a kvm trace); SOAK_BOOT and SOAK_VMM name the boot.", valueName: "cmd"))
    var onFailure: String?

    func validate() throws {
        guard runs >= 1 else { throw ValidationError("--runs must be at least 1") }
        guard timeout >= 1 else { throw ValidationError("--timeout must be at least 1") }
        if let compare, compare != "qemu" { throw ValidationError("--compare supports only 'qemu' (got '\(compare)')") }
        for (flag, path) in [("--kernel", kernel), ("--initrd", initrd)] where access(path, R_OK) != 0 {
            throw ValidationError("\(flag) \(path): not readable (run 'make firmware' first)")
        }
        if compare == "qemu", access(qemu, X_OK) != 0 {
            throw ValidationError("--qemu \(qemu): not executable (apt-get install qemu-system-x86)")
        }
        guard geteuid() == 0 else { throw ValidationError("bench soak needs root: it creates the TAP device '\(tap)'") }
    }

    func run() throws {
        kvmrun_stdout_line_buffered()
        let image = "\(directory)/kvmrun-soak-\(getpid()).img"
        try SoakFiles.createImage(image, bytes: 16 << 20)
        defer { unlink(image) }
        let network = try BenchTap(name: tap, hostAddress: "172.30.1.1")
        defer { network.remove() }
        let qemuDevices = compare == "qemu" ? QEMUSoakDevices.probe(qemu) : QEMUSoakDevices()

        print("bench soak: \(runs) boot(s) per VMM; kernel \(kernel), initrd \(initrd)")
        print("cycle: 1/2 vCPUs; without/with devices (disk, tap \(tap), vsock, virtio-mem); ended by reboot/SIGTERM")
        if compare == "qemu" { print("qemu devices: \(qemuDevices.summary)") }
        var tallies = [SoakTally(vmm: "kvmrun")]
        if compare == "qemu" { tallies.append(SoakTally(vmm: "qemu")) }
        for index in 0..<runs {
            let plan = SoakPlan(index: index)
            let ours = SoakRunner(plan: plan, timeout: timeout, verbose: verbose)
                .boot(executable: executablePath(), arguments: kvmrunArguments(plan, image: image), vmm: "kvmrun")
            tallies[0].add(ours)
            print("boot \(index + 1) kvmrun \(plan.label): \(ours.description)")
            runHook(ours, boot: index + 1, vmm: "kvmrun")
            if compare == "qemu" {
                let theirs = SoakRunner(plan: plan, timeout: timeout, verbose: verbose)
                    .boot(executable: qemu, arguments: qemuArguments(plan, image: image, devices: qemuDevices), vmm: "qemu")
                tallies[1].add(theirs)
                print("boot \(index + 1) qemu   \(plan.label): \(theirs.description)")
                runHook(theirs, boot: index + 1, vmm: "qemu")
            }
        }
        print("")
        for tally in tallies { print(tally.summary) }
        if tallies.contains(where: { $0.reached != $0.boots }) { throw ExitCode(1) }
    }

    func runHook(_ outcome: SoakOutcome, boot: Int, vmm: String) {
        guard let onFailure else { return }
        if case .reached = outcome { return }
        let command = "export SOAK_BOOT=\(boot) SOAK_VMM=\(vmm); " + onFailure
        guard let child = try? ChildProcess(executable: "/bin/sh", arguments: ["-c", command]) else {
            print("  --on-failure: cannot run /bin/sh")
            return
        }
        let status = child.waitForExit(timeoutMilliseconds: 120_000)
        child.drain(timeoutMilliseconds: 1000)
        let output = String(decoding: child.stdoutText + child.stderrText, as: UTF8.self)
        print("  --on-failure exit \(status.map(String.init) ?? "timeout"): \(output.suffix(2000))")
    }

    func commandLine(_ plan: SoakPlan) -> String {
        // Held runs wait for the SIGTERM; the rest reboot right after the marker.
        cmdline + (plan.endsBySignal ? " kvmrun.hold=30" : "")
    }

    func kvmrunArguments(_ plan: SoakPlan, image: String) -> [String] {
        var arguments = ["vm", "run", "--kernel", kernel, "--initrd", initrd, "--cpus", String(plan.cpus),
                         "--console", "stdio", "--cmdline", commandLine(plan)]
        if plan.devices {
            arguments += ["--memory", "128M,hotplug=1G,requested=128M",
                          "--disk", "path=\(image),id=soak", "--net", "tap=\(tap)",
                          "--vsock", "cid=3,uds=\(directory)/kvmrun-soak-\(getpid()).vsock"]
        } else {
            arguments += ["--memory", "128M"]
        }
        return arguments
    }

    func qemuArguments(_ plan: SoakPlan, image: String, devices: QEMUSoakDevices) -> [String] {
        var arguments = ["-M", "microvm,accel=kvm,acpi=off", "-cpu", "host", "-smp", String(plan.cpus), "-m", "128",
                         "-nodefaults", "-no-user-config", "-display", "none", "-serial", "stdio", "-no-reboot",
                         "-kernel", kernel, "-initrd", initrd, "-append", commandLine(plan)]
        if plan.devices {
            arguments += ["-drive", "id=soak,file=\(image),format=raw,if=none", "-device", "virtio-blk-device,drive=soak",
                          "-netdev", "tap,id=net0,ifname=\(tap),script=no,downscript=no,vhost=off",
                          "-device", "virtio-net-device,netdev=net0"]
            if devices.vsock { arguments += ["-device", "vhost-vsock-device,guest-cid=3"] }
        }
        return arguments
    }
}

/// What QEMU on this host can add to a device run (vhost-vsock needs /dev/vhost-vsock).
struct QEMUSoakDevices {
    var vsock = false

    static func probe(_ qemu: String) -> QEMUSoakDevices {
        QEMUSoakDevices(vsock: access("/dev/vhost-vsock", R_OK | W_OK) == 0)
    }

    var summary: String {
        "disk, tap" + (vsock ? ", vhost-vsock" : " (no /dev/vhost-vsock: no vsock)") + "; no virtio-mem (not on QEMU 7.2's microvm)"
    }
}

enum SoakFiles {
    /// A sparse raw image of `bytes`.
    static func createImage(_ path: String, bytes: Int) throws {
        let fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw ValidationError("bench soak: cannot create \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        guard ftruncate(fd, off_t(bytes)) == 0 else {
            unlink(path)
            throw ValidationError("bench soak: cannot size \(path): \(String(cString: strerror(errno)))")
        }
    }
}
