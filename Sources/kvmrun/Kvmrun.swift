import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif

@main
struct Kvmrun: ParsableCommand {
    /// runc's global flags (--root, --log, --log-format, --systemd-cgroup, --debug) come before
    /// the verb, where the argument parser's subcommands do not look: they are taken off first.
    static func main() {
        do {
            let (globals, rest) = try GlobalOptions.split(Array(CommandLine.arguments.dropFirst()))
            GlobalOptions.current = globals
            main(rest)
        } catch {
            var line = Array("kvmrun: \(error)\n".utf8)
            // SAFETY: writes the local byte array to stderr.
            _ = write(STDERR_FILENO, &line, line.count)
            Glibc.exit(64)
        }
    }

    static let configuration = CommandConfiguration(
        commandName: "kvmrun",
        abstract: "A micro-VMM that boots Linux guests directly on KVM, and an OCI runtime whose containers run in microVMs.",
        discussion: """
        As an OCI runtime (runc's verbs and flags): 'kvmrun run --bundle DIR ID', or
        'podman --runtime $(command -v kvmrun) run ...'. Raw VMs: 'kvmrun vm run'.
        Start with 'kvmrun vm run --kernel firmware/out/vmlinux --initrd firmware/out/initramfs.cpio.gz'
        (build those with 'make firmware'). 'kvmrun bench boot' measures boot latency against QEMU.
        """,
        version: "0.9.0",
        subcommands: [
            CreateCommand.self, StartCommand.self, RunCommand.self, StateCommand.self, KillCommand.self,
            DeleteCommand.self, ExecCommand.self, PsCommand.self, ListCommand.self, PauseCommand.self,
            ResumeCommand.self, UpdateCommand.self, EventsCommand.self, FeaturesCommand.self,
            VMCommand.self, BenchCommand.self, RelayCommand.self,
        ]
    )
}

struct VMCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vm",
        abstract: "Run and manage microVMs.",
        subcommands: [VMRunCommand.self, VMInfoCommand.self, VMPauseCommand.self, VMResumeCommand.self,
                      VMMemoryCommand.self, VMDriveCommand.self, VMMetricsCommand.self, VMShutdownCommand.self,
                      VMCtrlAltDelCommand.self]
    )
}

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmarks that print figures (boot latency, VMM memory, I/O throughput).",
        subcommands: [BenchBootCommand.self, BenchIOCommand.self, BenchSoakCommand.self, BenchAgentCommand.self, BenchRunCommand.self]
    )
}
