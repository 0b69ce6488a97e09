#if canImport(Glibc)
import Glibc
#endif
import Harness
import Testing

/// The vCPUs as the guest kernel sees them (firmware/initramfs/tests/cpu.sh): the CPUID kvmrun
/// sets up decides how Linux drives its timers, and a timer the guest has to calibrate and
/// verify under emulation is where boots used to stall or fall back to a broadcast tick.
@Suite("vCPUs as the guest sees them", .serialized,
       .enabled(if: E2E.bootsEnabled, "needs a hardware-style KVM: `make test` runs these in the nested host (KVMRUN_E2E=1)"))
struct CPUTests {
    @Test("TSC-deadline timer announced and used: no LAPIC timer calibration, no PIT broadcast tick; 2 cores in one package")
    func timerAndTopology() throws {
        let result = try E2E.boot(cpus: 2, extraCommandLine: "kvmrun.script=cpu")
        let console = result.stdout
        #expect(result.status == 0, "stderr: \(result.stderr)")
        #expect(console.contains("KVMRUN_SCRIPT_EXIT=0"), "console: \(console.suffix(2000))")
        #expect(console.contains("cpu_flag tsc_deadline_timer=yes"), "console: \(console.suffix(2000))")
        #expect(console.contains("cpu_flag hypervisor=yes"))
        #expect(console.contains("TSC deadline timer available"), "the kernel did not take the TSC-deadline path")
        #expect(!console.contains("APIC timer disabled"), "console: \(console.suffix(2000))")
        #expect(!console.contains("Calibrating APIC timer"))
        #expect(console.contains("cpu_online=0-1"))
        #expect(console.contains("cpu_topology cpu0 package=0 core=0 siblings=0"), "console: \(console.suffix(1500))")
        #expect(console.contains("cpu_topology cpu1 package=0 core=1 siblings=1"), "console: \(console.suffix(1500))")
        #expect(console.contains("clockevent=lapic-deadline"), "console: \(console.suffix(1500))")
    }
}
