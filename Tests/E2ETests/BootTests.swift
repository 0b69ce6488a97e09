#if canImport(Glibc)
import Glibc
#endif
import Harness
import Testing

/// Boots of the firmware kernel on a hardware-style KVM, checked by what the guest printed and
/// how kvmrun exited.
@Suite("Booting the firmware kernel", .serialized,
       .enabled(if: E2E.bootsEnabled, "needs a hardware-style KVM: `make test` runs these in the nested host (KVMRUN_E2E=1)"))
struct BootTests {
    @Test("vmlinux (PVH entry), 1 vCPU, 128 MiB: init reports 1 CPU and the VM exits 0", arguments: [1, 2])
    func vmlinux(cpus: Int) throws {
        let result = try E2E.boot(cpus: cpus)
        #expect(result.stdout.contains("KVMRUN_INIT_OK cpus=\(cpus) "), "console: \(result.stdout.suffix(2000))")
        #expect(result.status == 0, "stderr: \(result.stderr)")
    }

    @Test("bzImage (64-bit boot protocol), 1 and 2 vCPUs: init marker and exit 0", arguments: [1, 2])
    func bzImage(cpus: Int) throws {
        let result = try E2E.boot(kernel: E2E.bzImage, cpus: cpus)
        #expect(result.stdout.contains("KVMRUN_INIT_OK cpus=\(cpus) "), "console: \(result.stdout.suffix(2000))")
        #expect(result.status == 0, "stderr: \(result.stderr)")
    }

    @Test("the guest sees the RAM it was given")
    func memorySize() throws {
        let result = try E2E.boot(memory: "256M")
        guard let line = result.stdout.split(separator: "\n").first(where: { $0.contains("KVMRUN_INIT_OK") }),
              let field = line.split(separator: " ").first(where: { $0.hasPrefix("mem_kb=") }),
              let kib = Int(field.dropFirst(7)) else {
            Issue.record("no mem_kb in the init line; console: \(result.stdout.suffix(1500))")
            return
        }
        #expect(kib > 200 * 1024 && kib <= 256 * 1024)
    }

    @Test("--boot-timer: the guest's write is reported with the phases before it")
    func bootTimer() throws {
        let result = try E2E.boot(extra: ["--boot-timer"])
        #expect(result.status == 0)
        let line = result.stderr.split(separator: "\n").first { $0.contains("boot-time ") }
        #expect(line?.contains("boot_timer_ms=") == true, "stderr: \(result.stderr)")
        #expect(line?.contains("first_kvm_run_ms=") == true)
        #expect(line?.contains("kernel_loaded_ms=") == true)
        #expect(line?.contains("first_console_byte_ms=") == true)
    }

    @Test("a guest kernel panic ends kvmrun non-zero with a one-line reason")
    func panic() throws {
        let result = try E2E.boot(extraCommandLine: "kvmrun.test=panic")
        #expect(result.status == 1, "stderr: \(result.stderr)")
        #expect(result.stderr.contains("guest kernel panicked"))
        #expect(result.stdout.contains("Kernel panic"), "console: \(result.stdout.suffix(1500))")
    }

    @Test("--console file:PATH writes the console to the file, not stdout")
    func consoleFile() throws {
        let path = E2E.temporaryPath("console.log")
        defer { unlink(path) }
        let result = try E2E.boot(extra: ["--console", "file:\(path)"])
        #expect(result.status == 0)
        #expect(!result.stdout.contains("KVMRUN_INIT_OK"))
        #expect(E2E.readFile(path).contains("KVMRUN_INIT_OK"))
    }

    @Test("SIGTERM stops a running VM cleanly with status 143")
    func sigterm() throws {
        let child = try ChildProcess(executable: E2E.binary, arguments: [
            "vm", "run", "--kernel", E2E.vmlinux, "--initrd", E2E.initramfs,
            "--cmdline", "console=ttyS0 reboot=k panic=-1 kvmrun.hold=60",
        ])
        let seen = child.waitForStdout(containing: "KVMRUN_INIT_OK", timeoutMilliseconds: 120_000)
        #expect(seen != nil)
        child.signal(SIGTERM)
        let status = child.waitForExit(timeoutMilliseconds: 20_000)
        child.drain(timeoutMilliseconds: 1000)
        #expect(status == 143, "stderr: \(String(decoding: child.stderrText, as: UTF8.self))")
        #expect(String(decoding: child.stderrText, as: UTF8.self).contains("stopped by signal 15"))
    }
}
