import ArgumentParser

@main
struct Kvmrun: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kvmrun",
        abstract: "A micro-VMM that boots Linux guests directly on KVM.",
        discussion: """
        Start with 'kvmrun vm run --kernel firmware/out/vmlinux --initrd firmware/out/initramfs.cpio.gz'
        (build those with 'make firmware'). 'kvmrun bench boot' measures boot latency against QEMU.
        """,
        subcommands: [VMCommand.self, BenchCommand.self, RelayCommand.self]
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
        subcommands: [BenchBootCommand.self, BenchIOCommand.self, BenchSoakCommand.self, BenchAgentCommand.self]
    )
}
