#if canImport(Glibc)
import Glibc
#endif
import Testing

/// virtio-mem in a real guest: the firmware kernel's driver plugs what `requested=` asks for and
/// onlines it (CONFIG_MHP_DEFAULT_ONLINE_TYPE_ONLINE_MOVABLE); the guest script
/// firmware/initramfs/tests/mem.sh waits for MemTotal and reports what the kernel sees.
@Suite("virtio-mem memory hotplug in the guest", .serialized,
       .enabled(if: E2E.bootsEnabled, "needs a hardware-style KVM: `make test` runs these in the nested host (KVMRUN_E2E=1)"))
struct MemHotplugTests {
    /// Boots 256 MiB of RAM with `hotplug` and runs mem.sh, waiting for MemTotal ≥ `wantKiB`.
    static func boot(memory: String, wantKiB: Int) throws -> (E2E.Result, [String: Int]) {
        let cmdline = "console=ttyS0 reboot=k panic=-1 kvmrun.script=mem kvmrun.mem_want_kb=\(wantKiB)"
        let result = try E2E.run(["vm", "run", "--kernel", E2E.vmlinux, "--initrd", E2E.initramfs,
                                  "--memory", memory, "--cmdline", cmdline], timeout: 300)
        var values: [String: Int] = [:]
        // The console ends lines with "\r\n", one Character in Swift: split on isNewline.
        for line in result.stdout.split(whereSeparator: \.isNewline) {
            for field in line.split(separator: " ") {
                let parts = field.split(separator: "=", maxSplits: 1)
                guard parts.count == 2, let value = Int(parts[1]) else { continue }
                values[String(parts[0])] = value
            }
        }
        return (result, values)
    }

    @Test("--memory 256M,hotplug=1G,requested=512M: MemTotal grows by 512 MiB, four movable blocks come online")
    func plugAtBoot() throws {
        let (result, values) = try MemHotplugTests.boot(memory: "256M,hotplug=1G,requested=512M",
                                                        wantKiB: (200 + 512) * 1024)
        let console = result.stdout.suffix(4000)
        #expect(result.status == 0, "stderr: \(result.stderr)")
        #expect(values["KVMRUN_SCRIPT_EXIT"] == 0, "console: \(console)")
        let total = try #require(values["mem_total_kb"], "console: \(console)")
        // Boot RAM alone gives 200..256 MiB (BootTests); 512 MiB more must show.
        #expect(total >= (200 + 512) * 1024 && total <= (256 + 512) * 1024, "console: \(console)")
        #expect(values["memory_blocks_online"] == 2 + 4, "two boot blocks and four hot-added; console: \(console)")
        #expect(result.stdout.contains("iomem: 100000000-13fffffff : virtio"), "the 1 GiB region at 4 GiB; console: \(console)")
        #expect(result.stdout.contains("iomem:   100000000-11fffffff : System RAM (virtio_mem)"),
                "512 MiB plugged from its start; console: \(console)")
        #expect(!result.stderr.contains("needs reset"), "stderr: \(result.stderr)")
    }

    @Test("--memory 256M,hotplug=1G: the driver finds the region at 4 GiB but nothing is plugged or in e820")
    func nothingRequested() throws {
        let (result, values) = try MemHotplugTests.boot(memory: "256M,hotplug=1G", wantKiB: 0)
        let console = result.stdout.suffix(4000)
        #expect(result.status == 0, "stderr: \(result.stderr)")
        #expect(values["KVMRUN_SCRIPT_EXIT"] == 0, "console: \(console)")
        let total = try #require(values["mem_total_kb"], "console: \(console)")
        #expect(total > 200 * 1024 && total <= 256 * 1024, "console: \(console)")
        #expect(values["memory_blocks_online"] == 2, "console: \(console)")
        #expect(result.stdout.contains("virtio_mem virtio1: start address: 0x100000000"), "console: \(console)")
        #expect(result.stdout.contains("virtio_mem virtio1: region size: 0x40000000"), "console: \(console)")
        #expect(result.stdout.contains("iomem: 100000000-13fffffff : virtio"), "console: \(console)")
        #expect(!result.stdout.contains("System RAM (virtio_mem)"), "console: \(console)")
    }
}

@Suite("virtio-mem options on the command line")
struct MemOptionTests {
    @Test("a hotplug region that is not a multiple of 128 MiB is a usage error (status 64)")
    func badRegion() throws {
        let result = try E2E.run(["vm", "run", "--kernel", "/nonexistent", "--memory", "256M,hotplug=100M"])
        #expect(result.status == 64, "stderr: \(result.stderr)")
        #expect(result.stderr.contains("--memory: hotplug=100 MiB must be a multiple of 128 MiB"), "stderr: \(result.stderr)")
    }
}
