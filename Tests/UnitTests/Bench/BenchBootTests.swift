#if canImport(Glibc)
import Glibc
#endif
import Harness
import Testing
@testable import kvmrun

@Suite("bench boot: phases, readings and the plot")
struct BenchBootTests {
    static let console = """
    KVMRUN_INIT_OK cpus=1 mem_kb=120000 uptime=0.61 mode=default\r
    KVMRUN_PHASES run_init=0.412345 marker=0.498765 vm_clock_ns=301235000\r
    KVMRUN_INITCALL 99999 virtio_mmio_init+0x0/0x40\r
    KVMRUN_INITCALL 1234 foo_init+0x0/0x10\r
    KVMRUN_PHASES_END\r
    """

    static func sample() -> Sample {
        var sample = Sample()
        sample.bootToInit = 900
        sample.parseGuestLines(console)
        // The VMM process started 5 ms after the spawn, on the same monotonic clock.
        sample.parseBootTime("boot-time boot_timer_ms=700.000 kernel_loaded_ms=30.000 first_kvm_run_ms=40.000 first_kvm_run_cpu_ms=9.500 process_start_monotonic_ms=1005.000",
                             spawnedAtMilliseconds: 1000)
        return sample
    }

    @Test("guest stamps and kvmrun's boot-time line give every phase on the spawn's axis")
    func phases() throws {
        let sample = Self.sample()
        #expect(sample.guestRunInit == 412.345)
        #expect(sample.guestMarker == 498.765)
        #expect(sample.firstRun == 45)
        #expect(sample.bootTimer == 705)
        #expect(sample.setupCPU == 9.5)
        let zero = try #require(sample.guestClockZero)
        #expect(abs(zero - 401.235) < 1e-9)
        #expect(abs(try #require(sample.entryToClockZero) - 356.235) < 1e-9)
        #expect(abs(try #require(sample.initToMarker) - 86.42) < 1e-9)
        #expect(sample.initcalls == ["virtio_mmio_init": 99999, "foo_init": 1234])
        #expect(abs(try #require(sample.vmCreated) - 100) < 1e-9, "clock zero 401.235 less 301.235 of kvm-clock")
        // The segments of the bar add up to the measured spawn → marker time.
        let total = BootPlot.segments(sample).reduce(0) { $0 + $1.1 }
        #expect(abs(total - 900) < 1e-9)
        #expect(BootPlot.segments(sample).map(\.0.label) == [BootPlot.vmmSetUp, BootPlot.entry, BootPlot.kernel, BootPlot.initScript].map(\.label))
    }

    @Test("a QEMU run (no boot-time line) is split at KVM_CREATE_VM by kvm-clock, else one phase to clock zero")
    func qemuSegments() {
        var sample = Sample()
        sample.bootToInit = 1000
        sample.parseGuestLines(Self.console)
        #expect(sample.firstRun == nil)
        #expect(BootPlot.segments(sample).map(\.0.label) == [BootPlot.beforeVM, BootPlot.afterVM, BootPlot.kernel, BootPlot.initScript].map(\.label))
        sample.vmCreatedToClockZero = nil
        #expect(BootPlot.segments(sample).map(\.0.label) == [BootPlot.beforeClock, BootPlot.kernel, BootPlot.initScript].map(\.label))
    }

    @Test("medians and the slowest initcalls over a series")
    func series() {
        var series = Series(name: "kvmrun")
        for boot in [900.0, 1100, 1000] {
            var sample = Self.sample()
            sample.bootToInit = boot
            series.add(sample)
        }
        var failed = Sample()
        failed.error = "no marker"
        series.add(failed)
        #expect(series.failures == 1)
        #expect(series.median(\.bootToInit) == 1000)
        #expect(series.slowestInitcalls(1).map(\.name) == ["virtio_mmio_init"])
    }

    @Test("the plot has a bar segment per phase per run, the medians, and well-formed text")
    func plot() {
        var kvmrun = Series(name: "kvmrun"), qemu = Series(name: "qemu")
        kvmrun.add(Self.sample())
        kvmrun.add(Self.sample())
        var theirs = Sample()
        theirs.bootToInit = 1000
        theirs.parseGuestLines(Self.console)
        qemu.add(theirs)
        let svg = BootPlot(series: [kvmrun, qemu], title: "a <test> & more").svg()
        #expect(svg.hasPrefix("<svg xmlns=\"http://www.w3.org/2000/svg\""))
        #expect(svg.hasSuffix("</svg>\n"))
        #expect(occurrences(of: "<rect x=", in: svg) == 2 * 4 + 4 + 6, "bars + legend")
        #expect(svg.contains("kvmrun median 900.0 ms"))
        #expect(svg.contains("qemu median 1000.0 ms"))
        #expect(svg.contains("a &lt;test&gt; &amp; more"))
    }

    @Test("vCPU threads of both VMMs are told from their own threads")
    func threadNames() {
        #expect(BenchBootCommand.isVCPUThread("vcpu 0"))
        #expect(BenchBootCommand.isVCPUThread("CPU 1/KVM"))
        #expect(!BenchBootCommand.isVCPUThread("kvmrun"))
        #expect(!BenchBootCommand.isVCPUThread("qemu-system-x86"))
    }

    @Test("thread CPU from schedstat and from stat")
    func threadCPU() {
        #expect(ThreadCPU.schedstatNanoseconds("123456789 5000 12\n") == 123_456_789)
        let stat = "42 (CPU 0/KVM) S 1 42 42 0 -1 4194624 100 0 0 0 150 25 0 0 20 0 3 0 100 0 0"
        let ticks = UInt64(sysconf(Int32(_SC_CLK_TCK)))
        #expect(ThreadCPU.statNanoseconds(stat) == 175 * 1_000_000_000 / ticks)
        #expect(!ThreadCPU.threads(pid: getpid()).isEmpty)
    }

    @Test("RSS, PSS and anonymous memory leave guest RAM out")
    func smaps() {
        let text = """
        00400000-00c00000 r-xp 00000000 fd:00 123 /usr/bin/kvmrun
        Size:               8192 kB
        Rss:                6000 kB
        Pss:                3000 kB
        Anonymous:             0 kB
        7f0000000000-7f0008000000 rw-p 00000000 00:00 0
        Size:             131072 kB
        Rss:               40000 kB
        Pss:               40000 kB
        Anonymous:         40000 kB
        7f1000000000-7f1000100000 rw-p 00000000 00:00 0
        Rss:                 400 kB
        Pss:                 400 kB
        Anonymous:           400 kB
        """
        let reading = ProcessMemory.outsideGuest(smaps: text, guestMemory: 128 << 20)
        #expect(reading == ProcessMemory.Reading(resident: 6400 * 1024, proportional: 3400 * 1024, anonymous: 400 * 1024))
    }
}

func occurrences(of needle: String, in text: String) -> Int {
    let haystack = Array(text.utf8), pattern = Array(needle.utf8)
    var count = 0, index = 0
    while index + pattern.count <= haystack.count {
        if haystack[index..<(index + pattern.count)].elementsEqual(pattern) { count += 1; index += pattern.count } else { index += 1 }
    }
    return count
}

@Suite("bench boot: initcall names from the vmlinux symbol table")
struct KernelSymbolsTests {
    @Test("the firmware vmlinux names its initcalls",
          .enabled(if: FirmwareKernel.exists("vmlinux"), "firmware/out/vmlinux not built; skipping"))
    func firmwareSymbols() throws {
        let symbols = KernelSymbols(path: FirmwareKernel.path("vmlinux"))
        #expect(!symbols.isEmpty)
        // Whatever address pty_init has in this build, its own address must map back to it.
        let nm = symbols.address(of: "pty_init")
        let address = try #require(nm)
        #expect(symbols.name(for: "0x" + String(address, radix: 16)) == "pty_init")
        #expect(symbols.name(for: "not_an_address") == "not_an_address")
    }

    @Test("a file without a symbol table leaves addresses as they are")
    func noSymbols() {
        let symbols = KernelSymbols(source: [UInt8](repeating: 0, count: 100))
        #expect(symbols.isEmpty)
        #expect(symbols.name(for: "0xffffffff81000000") == "0xffffffff81000000")
    }

    @Test("--settle outside 0...600 is refused naming the option; with it, the guest's hold covers the wait")
    func settleOption() throws {
        for bad in ["-1", "601"] {
            #expect {
                _ = try BenchBootCommand.parse(["--settle", bad, "--kernel", "Package.swift", "--initrd", "Package.swift"])
            } throws: { error in
                BenchBootCommand.message(for: error).contains("--settle")
            }
        }
        let command = try BenchBootCommand.parse(["--settle", "8", "--kernel", "Package.swift", "--initrd", "Package.swift"])
        let words = command.guestCommandLine.split(separator: " ")
        #expect(words.filter { $0.hasPrefix("kvmrun.hold=") } == ["kvmrun.hold=18"])
        #expect(words.contains("kvmrun.phases=1"))
        let plain = try BenchBootCommand.parse(["--kernel", "Package.swift", "--initrd", "Package.swift"])
        #expect(plain.guestCommandLine.contains("kvmrun.hold=1 "))
    }
}
