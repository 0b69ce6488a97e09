import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif
import KVM
import Runtime
import VMM

struct VMRunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Boot a Linux kernel in a new microVM and run it until the guest shuts down.",
        discussion: """
        The kernel is an uncompressed ELF vmlinux (entered through its PVH note when it has one)
        or a bzImage (64-bit boot protocol). The guest gets the serial console on COM1 (ttyS0),
        an i8042 whose reset command ends the VM, and --cpus vCPUs described by an MP table.

        Without --cmdline the guest gets: "\(VMConfig.defaultCommandLine)". kvmrun always appends
        "\(VMConfig.requiredCommandLine)", which lets it tell a kernel panic from a reboot.

        Exit status: 0 when the guest reboots or powers off (end a guest with 'reboot -f'),
        1 when it panics or triple-faults, 2 on a KVM or VMM error (including a /dev/kvm that
        cannot run Linux, such as KVM-PVM: --debug boots anyway and shows KVM's raw error),
        128+N on signal N (SIGINT/SIGTERM stop the VM cleanly). Bad arguments exit 64.

        Example:
          kvmrun vm run --kernel firmware/out/vmlinux --initrd firmware/out/initramfs.cpio.gz \\
                        --cpus 2 --memory 256M --boot-timer
        """
    )

    @Option(name: .long, help: ArgumentHelp("Guest kernel: ELF vmlinux or bzImage.", valueName: "path"))
    var kernel: String

    @Option(name: .long, help: ArgumentHelp("Initial ramdisk (cpio, optionally compressed).", valueName: "path"))
    var initrd: String?

    @Option(name: .long, help: ArgumentHelp("Kernel command line (replaces the default).", valueName: "string"))
    var cmdline: String?

    @Option(name: .long, help: ArgumentHelp("Number of vCPUs.", valueName: "n"))
    var cpus: Int = 1

    @Option(name: .long, help: ArgumentHelp("Guest RAM: 128M, 1G, 512MiB; a bare number is MiB. Memory hotplug (virtio-mem): SIZE,hotplug=REGION[,block=2M][,requested=SIZE]. SIZE,thp=off keeps boot RAM on small pages (the host holds only the pages the guest touched; default on: transparent huge pages).", valueName: "size"))
    var memory: String = "128M"

    @Option(name: .long, help: ArgumentHelp("Serial console: stdio, file:PATH or none.", valueName: "target"))
    var console: String = "stdio"

    @Option(name: .long, help: ArgumentHelp("A virtio-blk disk: path=FILE[,readonly=on|off][,id=NAME]. Repeatable.", valueName: "spec"))
    var disk: [String] = []

    @Option(name: .long, help: ArgumentHelp("A virtio-net device on a TAP: tap=NAME[,mac=XX:XX:XX:XX:XX:XX]. A missing tap is created (and removed on exit); an existing one is used and left in place. Repeatable.", valueName: "spec"))
    var net: [String] = []

    @Option(name: .long, help: ArgumentHelp("Run the VMM in this network namespace (/run/netns/NAME or /proc/PID/ns/net), entered before anything else, so --net tap=NAME opens a TAP the runtime created there.", valueName: "path"))
    var netns: String?

    @Option(name: .long, help: ArgumentHelp("A virtio-vsock device: cid=N,uds=PATH (Firecracker-style hybrid vsock).", valueName: "spec"))
    var vsock: String?

    @Option(name: .long, help: ArgumentHelp("Serve the control API (HTTP/1.1 + JSON) on this Unix socket.", valueName: "path"))
    var apiSocket: String?

    @Flag(name: .long, help: "Report boot times when the guest writes the boot timer (MMIO 0xd0000000).")
    var bootTimer = false

    @Flag(name: .long, help: "Boot even where /dev/kvm cannot run a stock Linux guest (KVM-PVM), to see KVM's raw error.")
    var debug = false

    func validate() throws {
        guard cpus >= 1 else { throw ValidationError("--cpus must be at least 1 (got \(cpus))") }
        guard cpus <= 254 else { throw ValidationError("--cpus \(cpus) is above the 254 vCPUs kvmrun supports") }
        _ = try parseConsole()
        _ = try parseDevices()
        if let apiSocket, apiSocket.isEmpty || apiSocket.utf8.count > 107 {
            throw ValidationError("--api-socket '\(apiSocket)': a Unix socket path must be 1 to 107 bytes")
        }
    }

    /// The virtio device options and the boot RAM size; errors are usage errors naming the option.
    func parseDevices() throws -> (memory: UInt64, hugePages: Bool, devices: DeviceOptions) {
        do {
            var devices = DeviceOptions()
            let (ram, hotplug, hugePages) = try HotplugOption.parseMemoryOption(memory)
            devices.hotplug = hotplug
            devices.disks = try DiskOption.parseAll(disk)
            devices.nets = try net.enumerated().map { (index, text) throws(VMMError) in try NetOption.parse(text, index: index) }
            devices.vsock = try vsock.map { (text) throws(VMMError) in try VsockOption.parse(text) }
            devices.apiSocket = apiSocket
            return (ram, hugePages, devices)
        } catch {
            throw ValidationError(error.description)
        }
    }

    func parseConsole() throws -> ConsoleTarget {
        switch console {
        case "stdio": return .stdio
        case "none": return .none
        default:
            if console.hasPrefix("file:"), console.count > 5 { return .file(String(console.dropFirst(5))) }
            throw ValidationError("--console must be stdio, none or file:PATH (got '\(console)')")
        }
    }

    func run() throws {
        // First, while the process has one thread: setns moves only the caller, and every
        // thread started later (vCPUs, the API server) inherits its namespace.
        if let netns {
            if access(netns, F_OK) != 0 { fail("--netns \(netns): no such file", status: 64) }
            do { try NetworkNamespace.enterForProcess(path: netns) } catch { fail(error.description, status: 2) }
        }
        let timeline = BootTimeline()
        // The files are opened here first so that a missing or unreadable one is a usage error
        // (status 64) named before any VM exists; Machine reads them again while loading.
        for (role, path) in [("kernel", kernel)] + (initrd.map { [("initrd", $0)] } ?? []) where access(path, R_OK) != 0 {
            let reason = errno == ENOENT ? "no such file" : "cannot be read (\(errno == EACCES ? "permission denied" : "errno \(errno)"))"
            fail("\(role) \(path): \(reason)", status: 64)
        }
        let (ramSize, hugePages, devices) = try parseDevices()
        for problem in devices.disks.compactMap(\.accessProblem) { fail(problem, status: 64) }
        var config = VMConfig(kernelPath: kernel, initrdPath: initrd, commandLine: cmdline, cpus: cpus,
                              memorySize: ramSize, console: try parseConsole(), bootTimer: bootTimer)
        config.devices = devices
        config.hugePages = hugePages
        let outcome: MachineExit
        do {
            // The VMM's log: swift-log through the runtime's handler (stderr, and --log FILE in
            // --log-format when the global flags give one), the same as the runtime verbs'.
            let globals = GlobalOptions.current
            let logger = RuntimeLogging.bootstrap(logPath: globals.log, format: globals.logFormat, debug: globals.debug)
            let machine = try Machine(config: config, timeline: timeline, logger: logger,
                                      bootReport: { report in printError(report) })
            // Checked once the kernel and devices are validated (bad input is named first) and
            // before any vCPU runs; returning unwinds the machine (sockets, TAPs) cleanly.
            if !debug, let reason = KVMFlavour.detect().cannotRunLinuxReason {
                printError(reason)
                throw ExitCode(2)
            }
            outcome = try machine.run()
        } catch let exit as ExitCode {
            throw exit
        } catch {
            fail("\(error)", status: 2)
        }
        if outcome != .guestShutdown { printError(outcome.description) }
        if bootTimer && timeline.time(of: .bootTimer) == 0 {
            printError(timeline.report + " (the guest never wrote the boot timer)")
        }
        throw ExitCode(outcome.exitStatus)
    }
}

/// Writes "kvmrun: MESSAGE" as one line on stderr.
func printError(_ message: String) {
    var line = Array("kvmrun: \(message)\n".utf8)
    // SAFETY: writes the local byte array; a failed write to stderr has nowhere to be reported.
    _ = write(STDERR_FILENO, &line, line.count)
}

func fail(_ message: String, status: Int32) -> Never {
    printError(message)
    exit(status)
}
