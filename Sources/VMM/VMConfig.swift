/// Where the guest's serial console goes.
public enum ConsoleTarget: Equatable, Sendable {
    case stdio
    case file(String)
    case none
}

/// Everything `Machine` needs to build and boot a VM.
public struct VMConfig: Sendable {
    /// Kernel command line used when none is given: serial console, the i8042 reset as the
    /// reboot method (the VMM's exit), reboot at once on panic.
    public static let defaultCommandLine = "console=ttyS0 reboot=k panic=-1"
    /// Always appended: a panic reboots "warm", which is how the VMM tells it from a reboot.
    public static let requiredCommandLine = "reboot=panic_warm"

    /// Kernel and initrd files. Machine reads them while loading and keeps no copy: a VMM that
    /// held a 20 MiB vmlinux in its heap for the VM's lifetime would pay for it in resident memory.
    public var kernelPath: String
    public var initrdPath: String?
    public var commandLine: String
    public var cpus: Int
    public var memorySize: UInt64
    /// Boot RAM advised onto transparent huge pages (`--memory …,thp=on|off`, on by default).
    public var hugePages = true
    public var console: ConsoleTarget
    public var bootTimer: Bool
    public var devices = DeviceOptions()

    public init(kernelPath: String, initrdPath: String? = nil, commandLine: String? = nil,
                cpus: Int = 1, memorySize: UInt64 = 128 << 20, console: ConsoleTarget = .stdio,
                bootTimer: Bool = false) {
        self.kernelPath = kernelPath
        self.initrdPath = initrdPath
        self.commandLine = commandLine ?? VMConfig.defaultCommandLine
        self.cpus = cpus
        self.memorySize = memorySize
        self.console = console
        self.bootTimer = bootTimer
    }

    /// The command line the guest gets.
    public var effectiveCommandLine: String {
        commandLine.isEmpty ? VMConfig.requiredCommandLine : commandLine + " " + VMConfig.requiredCommandLine
    }
}
