#if canImport(Glibc)
import Glibc
#endif
import CKVM
import Devices
import KVM
import Memory
import Synchronization
import Sys
import Virtio
import Logging

/// A whole microVM: KVM objects, guest RAM, legacy devices and vCPU threads, built from a
/// `VMConfig` and run until the guest shuts down, fails, or a signal stops it.
public final class Machine: @unchecked Sendable {
    /// Where the kernel writes its reboot flag (BIOS data area): 0x1234 for a warm reboot.
    static let rebootFlagAddress = GuestAddress(0x472)
    static let rebootFlagWarm: UInt16 = 0x1234
    static let rebootFlagCold: UInt16 = 0
    /// Written before boot so that a reset without Linux's reboot path can be recognized.
    static let rebootFlagUnset: UInt16 = 0x4B52
    static let tssAddress: UInt64 = 0xFFFB_D000
    static let serialPort: UInt64 = 0x3F8
    static let serialIRQ: UInt32 = 4
    static let i8042Port: UInt64 = 0x60
    /// When the executable's pages are released the second time (`SettledRelease`): 5 s after
    /// the vCPUs start, well after a guest's boot on hardware (~0.2 s to init) and an agent's
    /// start; what runs later faults back from the page cache.
    static let settledReleaseDelay = Duration.seconds(5)

    enum StopRequest: Equatable {
        case reset(fromController: Bool, vcpu: UInt32? = nil)
        case crash
        case failure(String)
        /// The control API asked for a shutdown (`PUT /actions` Shutdown).
        case shutdownRequested
    }

    public let config: VMConfig
    public let timeline: BootTimeline
    public let memory: GuestMemory
    public private(set) var bootSetup: BootSetup?
    let kvm: KVMSystem
    let vm: VirtualMachine
    let ports = Bus()
    let mmio = Bus()
    let serial: Serial8250
    let virtio = VirtioSlots()
    let rng = RngDevice()
    private let serialInterrupt: EventFDInterrupt
    private let consoleFile: FileDescriptor?
    /// The console's output (nil with `--console none`): never blocks a vCPU, drained by the loop.
    let consoleSink: BufferedConsoleSink?
    /// The vCPU threads (the control API pauses and resumes them).
    var threads: [VcpuThread] = []
    /// Devices with host-side file descriptors (a TAP, sockets) add their event-loop
    /// subscriptions here while being attached; `run()` calls each once its loop exists.
    var loopSubscribers: [(EventLoop) throws -> Void] = []
    private let stopEvent: FileDescriptor
    private let stopRequest = Mutex<StopRequest?>(nil)
    /// The VMM's log (swift-log): guest misbehaviour at warning, VMM failures at error.
    let logger: Logger

    /// - Parameter bootReport: where the boot timer's `boot-time …` line goes when the guest
    ///   writes the timer (an output the user asked for with --boot-timer, not a log line).
    public init(config: VMConfig, timeline: BootTimeline = BootTimeline(),
                logger: Logger, bootReport: @escaping @Sendable (String) -> Void = { _ in }) throws {
        self.config = config
        self.timeline = timeline
        self.logger = logger

        kvm = try KVMSystem()
        try kvm.require(KVMSystem.requiredCapabilities)
        guard config.cpus >= 1 else { throw VMMError.config("--cpus must be at least 1") }
        guard config.cpus <= kvm.maxVCPUs else {
            throw VMMError.config("--cpus \(config.cpus) is above this host's KVM limit of \(kvm.maxVCPUs) vCPUs")
        }
        guard config.cpus <= MPTable.maxCPUs else {
            throw VMMError.config("--cpus \(config.cpus) is above the \(MPTable.maxCPUs) CPUs an MP table can describe")
        }

        vm = try kvm.createVM()
        try vm.setTSSAddress(Machine.tssAddress)
        try vm.createIRQChip()
        try vm.createPIT()

        memory = try Machine.makeGuestMemory(config)
        for (slot, region) in memory.regions.enumerated() {
            try vm.setMemoryRegion(slot: UInt32(slot), guestAddress: region.guestBase.raw,
                                   size: region.size, hostAddress: region.hostAddress)
        }

        stopEvent = FileDescriptor(try sys("eventfd for the stop signal") { kvmrun_eventfd() })

        // Serial console on COM1, IRQ 4 through an irqfd.
        switch config.console {
        case .stdio:
            consoleFile = nil
        case let .file(path):
            let raw = try sys("open console file \(path)") { open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644) }
            consoleFile = FileDescriptor(raw)
        case .none:
            consoleFile = nil
        }
        consoleSink = switch config.console {
        case .stdio: BufferedConsoleSink(fd: STDOUT_FILENO)
        case .file: BufferedConsoleSink(fd: consoleFile!.raw)
        case .none: nil
        }
        serialInterrupt = try EventFDInterrupt()
        try vm.registerIRQFD(eventFD: serialInterrupt.fd.raw, gsi: Machine.serialIRQ)
        let timeline = self.timeline
        serial = Serial8250(sink: consoleSink, interrupt: serialInterrupt) { timeline.mark(.firstConsoleByte) }
        try ports.insert(serial, name: "serial 0x3f8", base: Machine.serialPort, length: 8)

        // i8042 at 0x60 (data) and 0x64 (status/command): its reset command ends the VM.
        let controller = I8042 { [weak self] in self?.requestStop(.reset(fromController: true)) }
        try ports.insert(controller, name: "i8042", base: Machine.i8042Port, length: 5)

        if config.bootTimer {
            let report = { @Sendable [timeline] in
                if timeline.mark(.bootTimer) { bootReport(timeline.report) }
            }
            try mmio.insert(BootTimer(onSignal: report), name: "boot timer",
                            base: BootTimer.defaultAddress, length: BootTimer.length)
        }

        // Virtio devices before the kernel: their windows go on its command line.
        _ = try virtio.attach(rng, name: "virtio-rng", vm: vm, memory: memory, mmio: mmio, logger: logger)
        try attachBlockDevices()
        try attachNetDevices()
        try attachVsockDevices()
        try attachMemDevices()

        let setup = try Machine.load(config, extraCommandLine: virtio.commandLine, into: memory)
        bootSetup = setup
        try memory.store(Machine.rebootFlagUnset, at: Machine.rebootFlagAddress)
        timeline.mark(.kernelLoaded)

        let supported = try kvm.supportedCPUID()
        let host = CPUIDHost(tscDeadlineTimer: kvm.checkExtension(KVMRUN_CAP_TSC_DEADLINE_TIMER) > 0)
        for id in 0..<config.cpus {
            let vcpu = try vm.createVCPU(id: UInt32(id))
            try VcpuSetup.configure(vcpu, supportedCPUID: supported, host: host, vcpuCount: config.cpus)
            if id == 0 { try VcpuSetup.setBootRegisters(vcpu, setup.cpu) }
            threads.append(VcpuThread(vcpu: vcpu) { [unowned self] vcpu, shouldStop in
                self.vcpuLoop(vcpu, shouldStop: shouldStop)
            })
        }
    }

    /// Opens the kernel and initrd and loads them: an ELF kernel's PT_LOAD segments and the
    /// initrd are read from their files straight into guest RAM (nothing else of a vmlinux).
    static func load(_ config: VMConfig, extraCommandLine: String, into memory: GuestMemory) throws -> BootSetup {
        let kernel = try KernelFile(path: config.kernelPath, role: "kernel")
        let initrd = try config.initrdPath.map { path throws(FileLoader.Error) in try KernelFile(path: path, role: "initrd") }
        let commandLine = extraCommandLine.isEmpty ? config.effectiveCommandLine : config.effectiveCommandLine + " " + extraCommandLine
        return try loadLinux(BootConfig(kernel: kernel, initrd: initrd, commandLine: commandLine,
                                        cpus: config.cpus), into: memory)
    }

    /// Records why the machine must stop (the first reason wins) and wakes the main loop.
    func requestStop(_ request: StopRequest) {
        let first = stopRequest.withLock { current -> Bool in
            guard current == nil else { return false }
            current = request
            return true
        }
        if first {
            var one: UInt64 = 1
            // SAFETY: writes the local 8-byte counter increment eventfd expects.
            _ = write(stopEvent.raw, &one, 8)
        }
    }

    private func vcpuLoop(_ vcpu: VCPU, shouldStop: () -> Bool) {
        while !shouldStop() {
            let exit: VcpuExit
            do {
                if vcpu.id == 0 { timeline.markFirstRun() }
                exit = try vcpu.runOnce()
            } catch {
                requestStop(.failure(error.description))
                return
            }
            switch handleExit(exit, vcpu: vcpu.id, ports: ports, mmio: mmio) {
            case .resume: continue
            case .guestReset: requestStop(.reset(fromController: false, vcpu: vcpu.id))
            case .guestCrash: requestStop(.crash)
            case let .fail(reason): requestStop(.failure(reason))
            }
            return
        }
    }

    /// Runs the VM on the calling thread's event loop until it stops, then stops and joins every
    /// vCPU thread. SIGINT, SIGTERM and SIGHUP stop the VM (they are blocked and read through a
    /// signalfd from here on).
    public func run() throws -> MachineExit {
        let signals = FileDescriptor(try sys("signalfd for SIGINT/SIGTERM") { kvmrun_termination_signalfd() })
        VcpuThread.installKickHandler()
        let loop = try EventLoop()
        defer { loop.unsubscribeAll() }
        var receivedSignal: Int32?
        try loop.subscribe(fd: signals.raw) { _ in
            let number = kvmrun_signalfd_read(signals.raw)
            if number > 0 {
                receivedSignal = number
                loop.stop()
            }
        }
        try loop.subscribe(fd: stopEvent.raw) { _ in loop.stop() }
        try virtio.subscribe(to: loop)
        for subscribe in loopSubscribers { try subscribe(loop) }
        let api = try startAPI(on: loop)
        defer { api?.close() }
        let console = ConsoleInput(serial: serial, enabled: config.console == .stdio)
        try console.attach(to: loop)
        defer { console.detach() }
        if let consoleSink { loop.subscribeConsole(consoleSink, logger: logger) }
        defer { finishConsoleOutput() }

        var started: [VcpuThread] = []
        defer {
            for thread in started { thread.stop() }
            for thread in started where !thread.join() {
                logger.error("vCPU \(thread.vcpu.id) did not leave KVM_RUN within 5 s of the stop request; exiting anyway")
            }
        }
        // Set-up is over: what only it used of the executable need not stay resident. Before
        // the vCPU threads start, while this is the only thread (see ExecutableText).
        ExecutableText.releaseResidentPages()
        for thread in threads {
            try thread.start()
            started.append(thread)
        }
        var settled = SettledRelease(delay: Machine.settledReleaseDelay)
        settled.start()
        try loop.run(timeoutMilliseconds: 50) {
            console.retry()
            settled.poll()
        }

        if let receivedSignal { return .signal(receivedSignal) }
        switch stopRequest.withLock({ $0 }) {
        case let .reset(fromController, vcpu):
            return classifyReset(fromController: fromController, vcpu: vcpu)
        case .crash:
            return .guestPanic
        case let .failure(reason):
            return .failure(reason)
        case .shutdownRequested:
            logger.notice("shutdown requested through the control API")
            return .guestShutdown
        case nil:
            return .failure("the VM stopped without a reason")
        }
    }

    /// A reset is a reboot or poweroff when Linux's reboot path wrote a cold flag, a panic when it
    /// wrote the warm flag (`reboot=panic_warm`), and a triple fault when nothing wrote it and the
    /// reset did not come from the reset controller.
    func classifyReset(fromController: Bool, vcpu: UInt32?) -> MachineExit {
        let flag = (try? memory.load(UInt16.self, at: Machine.rebootFlagAddress)) ?? Machine.rebootFlagUnset
        return Machine.classifyReset(rebootFlag: flag, fromController: fromController, vcpu: vcpu)
    }

    static func classifyReset(rebootFlag flag: UInt16, fromController: Bool, vcpu: UInt32? = nil) -> MachineExit {
        switch flag {
        case Machine.rebootFlagWarm: return .guestPanic
        case Machine.rebootFlagCold: return .guestShutdown
        default: return fromController ? .guestShutdown : .tripleFault(vcpu: vcpu)
        }
    }
}
