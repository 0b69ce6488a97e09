import Devices
import KVM
import Testing
@testable import VMM

@Suite("Sizes, command line and exit classification")
struct ConfigTests {
    static let sizeCases: [(String, UInt64)] = [
        ("128M", 134_217_728), ("1G", 1_073_741_824), ("512MiB", 536_870_912), ("64", 67_108_864),
        ("4096K", 4_194_304), ("2gib", 2_147_483_648), ("1048576B", 1_048_576),
    ]

    @Test("sizes: suffixes are binary, a bare number is MiB", arguments: sizeCases)
    func sizes(text: String, bytes: UInt64) throws {
        #expect(try SizeParser.parse(text) == bytes)
    }

    @Test("bad sizes name the input", arguments: ["", "M", "12X", "-5M", "1.5G", "99999999999999999999G", "0x10M"])
    func badSizes(text: String) {
        #expect(throws: SizeParser.Error.self) { try SizeParser.parse(text) }
    }

    @Test("the reboot flag tells a reboot from a panic from a stray triple fault")
    func resetClassification() {
        #expect(Machine.classifyReset(rebootFlag: 0, fromController: true) == .guestShutdown)
        #expect(Machine.classifyReset(rebootFlag: 0, fromController: false) == .guestShutdown)
        #expect(Machine.classifyReset(rebootFlag: 0x1234, fromController: true) == .guestPanic)
        #expect(Machine.classifyReset(rebootFlag: Machine.rebootFlagUnset, fromController: true) == .guestShutdown)
        #expect(Machine.classifyReset(rebootFlag: Machine.rebootFlagUnset, fromController: false) == .tripleFault(vcpu: nil))
        #expect(MachineExit.guestShutdown.exitStatus == 0)
        #expect(MachineExit.guestPanic.exitStatus != 0)
        #expect(MachineExit.tripleFault(vcpu: 1).exitStatus != 0)
        #expect(MachineExit.signal(15).exitStatus == 143)
    }

    @Test("the panic flag is always on the guest command line")
    func commandLine() {
        let config = VMConfig(kernelPath: "k", commandLine: "console=ttyS0")
        #expect(config.effectiveCommandLine == "console=ttyS0 reboot=panic_warm")
        let defaults = VMConfig(kernelPath: "k")
        #expect(defaults.effectiveCommandLine.hasPrefix(VMConfig.defaultCommandLine))
    }

    @Test("the boot timeline reports phases in milliseconds since process start, once each")
    func timeline() {
        let timeline = BootTimeline(processStart: 1_000_000_000)
        #expect(timeline.mark(.firstRun, at: 1_002_500_000))
        #expect(!timeline.mark(.firstRun, at: 1_009_000_000))
        #expect(timeline.mark(.bootTimer, at: 1_150_000_000))
        #expect(timeline.report == "boot-time boot_timer_ms=150.000 first_kvm_run_ms=2.500 process_start_monotonic_ms=1000.000")
    }

    @Test("the first KVM_RUN is recorded once, with the CPU time used up to it")
    func firstRunCPU() {
        let timeline = BootTimeline(processStart: 1_000_000_000)
        #expect(timeline.cpuMillisecondsToFirstRun == nil)
        timeline.markFirstRun(at: 1_040_000_000, cpu: { 7_250_000 })
        timeline.markFirstRun(at: 1_090_000_000, cpu: { 99_000_000 })
        #expect(timeline.millisecondsSinceStart(.firstRun) == 40)
        #expect(timeline.cpuMillisecondsToFirstRun == 7.25)
        #expect(timeline.report == "boot-time first_kvm_run_ms=40.000 first_kvm_run_cpu_ms=7.250 process_start_monotonic_ms=1000.000")
    }
}

@Suite("Exit handling with synthetic exits")
struct ExitHandlerTests {
    @Test("synthetic exits map to actions without /dev/kvm")
    func actions() {
        let ports = Bus(), mmio = Bus()
        #expect(handleExit(.shutdown, vcpu: 0, ports: ports, mmio: mmio) == .guestReset)
        #expect(handleExit(.systemEvent(.crash, data: []), vcpu: 0, ports: ports, mmio: mmio) == .guestCrash)
        #expect(handleExit(.systemEvent(.reset, data: []), vcpu: 0, ports: ports, mmio: mmio) == .guestReset)
        #expect(handleExit(.interrupted, vcpu: 0, ports: ports, mmio: mmio) == .resume)
        guard case let .fail(unknown) = handleExit(.unknown(reason: 99), vcpu: 1, ports: ports, mmio: mmio) else {
            Issue.record("unknown exits must fail"); return
        }
        #expect(unknown.contains("99") && unknown.contains("vCPU 1"))
        guard case let .fail(internalReason) = handleExit(.internalError(suberror: 1, data: [0x10]), vcpu: 0, ports: ports, mmio: mmio) else {
            Issue.record("internal errors must fail"); return
        }
        #expect(internalReason.contains("emulation failure"))
        guard case .fail = handleExit(.failEntry(hardwareReason: 0x80000021, cpu: 3), vcpu: 0, ports: ports, mmio: mmio) else {
            Issue.record("failed entries must fail"); return
        }
    }

    @Test("string I/O (rep outsb) delivers every byte to the device")
    func stringIO() throws {
        let sink = RecordingSink()
        let ports = Bus()
        try ports.insert(Serial8250(sink: sink, interrupt: CountingLine()), name: "uart", base: 0x3F8, length: 8)
        var bytes: [UInt8] = Array("abc".utf8)
        let action = bytes.withUnsafeMutableBytes { buffer in
            handleExit(.io(PortIO(port: 0x3F8, size: 1, count: 3, isWrite: true, data: buffer)),
                       vcpu: 0, ports: ports, mmio: Bus())
        }
        #expect(action == .resume)
        #expect(sink.bytes == Array("abc".utf8))
    }

    @Test("a port read with nothing mapped returns zeros")
    func unmappedRead() {
        var bytes: [UInt8] = [0xAA, 0xBB]
        _ = bytes.withUnsafeMutableBytes { buffer in
            handleExit(.io(PortIO(port: 0x70, size: 2, count: 1, isWrite: false, data: buffer)),
                       vcpu: 0, ports: Bus(), mmio: Bus())
        }
        #expect(bytes == [0, 0])
    }
}
