#if canImport(Glibc)
import Glibc
#endif
import Harness
import Testing

/// Bad arguments and bad files: rejected with a message that names the problem and a non-zero
/// status, before any guest runs. These need only the kvmrun binary (and /dev/kvm for the
/// checks that come after opening it), so they also run on the development host.
@Suite("Bad input to kvmrun vm run")
struct BadInputTests {
    static var kernelArguments: [String] {
        access(E2E.vmlinux, R_OK) == 0 ? ["--kernel", E2E.vmlinux] : ["--kernel", "/nonexistent"]
    }

    @Test("a file that is not a kernel is refused, naming why")
    func notAKernel() throws {
        let path = E2E.temporaryPath("not-a-kernel")
        E2E.writeFile(path, Array("#!/bin/sh\necho this is a script, not a kernel\n".utf8) + [UInt8](repeating: 0, count: 8192))
        defer { unlink(path) }
        let result = try E2E.run(["vm", "run", "--kernel", path])
        #expect(result.status != 0)
        #expect(result.stderr.contains("not a Linux kernel"), "stderr: \(result.stderr)")
    }

    @Test("a truncated bzImage is refused as truncated",
          .enabled(if: access(E2E.bzImage, R_OK) == 0, "needs firmware/out/bzImage (make firmware)"))
    func truncatedBzImage() throws {
        let path = E2E.temporaryPath("truncated-bzImage")
        let fd = open(E2E.bzImage, O_RDONLY)
        var prefix = [UInt8](repeating: 0, count: 64 * 1024)
        let count = read(fd, &prefix, prefix.count)
        close(fd)
        E2E.writeFile(path, Array(prefix[0..<max(0, count)]))
        defer { unlink(path) }
        let result = try E2E.run(["vm", "run", "--kernel", path])
        #expect(result.status != 0)
        #expect(result.stderr.contains("truncated"), "stderr: \(result.stderr)")
    }

    @Test("a missing kernel file is named")
    func missingKernel() throws {
        let result = try E2E.run(["vm", "run", "--kernel", "/nonexistent/vmlinux"])
        #expect(result.status == 64)
        #expect(result.stderr.contains("kernel /nonexistent/vmlinux: no such file"), "stderr: \(result.stderr)")
    }

    @Test("an initrd larger than guest memory is refused with both sizes",
          .enabled(if: access(E2E.vmlinux, R_OK) == 0, "needs firmware/out/vmlinux (make firmware)"))
    func initrdTooLarge() throws {
        let path = E2E.temporaryPath("huge-initrd")
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        ftruncate(fd, 200 << 20)
        close(fd)
        defer { unlink(path) }
        let result = try E2E.run(["vm", "run", "--kernel", E2E.vmlinux, "--initrd", path, "--memory", "64M"])
        #expect(result.status != 0)
        #expect(result.stderr.contains("initrd"), "stderr: \(result.stderr)")
        #expect(result.stderr.contains("does not fit"), "stderr: \(result.stderr)")
    }

    @Test("memory below the minimum is refused", .enabled(if: access(E2E.vmlinux, R_OK) == 0, "needs firmware"))
    func memoryTooSmall() throws {
        let result = try E2E.run(["vm", "run", "--kernel", E2E.vmlinux, "--memory", "1M"])
        #expect(result.status != 0)
        #expect(result.stderr.lowercased().contains("memory"), "stderr: \(result.stderr)")
    }

    @Test("--cpus 0, --cpus 1000 and a bad --memory or --console are usage errors (status 64)", arguments: [
        ["--cpus", "0"], ["--cpus", "1000"], ["--memory", "lots"], ["--console", "serial"],
    ])
    func usageErrors(arguments: [String]) throws {
        let result = try E2E.run(["vm", "run"] + BadInputTests.kernelArguments + arguments)
        #expect(result.status == 64, "stderr: \(result.stderr)")
        #expect(result.stderr.contains(arguments[0]), "the message names the option; stderr: \(result.stderr)")
    }

    /// This host's /dev/kvm is KVM-PVM (no VMX/SVM in the CPU flags, kvm_pvm loaded).
    static var hostIsPVM: Bool {
        guard access("/sys/module/kvm_pvm", F_OK) == 0, let cpuinfo = ProcessMemory.readSmall("/proc/cpuinfo") else { return false }
        return !cpuinfo.split(separator: "\n").contains { line in
            line.hasPrefix("flags") && line.split(separator: " ").contains { $0 == "vmx" || $0 == "svm" }
        }
    }

    @Test("on KVM-PVM, booting a stock Linux kernel is refused in one line that points at scripts/with-kvm (status 2)",
          .enabled(if: hostIsPVM && access(E2E.vmlinux, R_OK) == 0, "needs a KVM-PVM host and firmware/out/vmlinux"))
    func pvmRefused() throws {
        let result = try E2E.run(["vm", "run", "--kernel", E2E.vmlinux])
        #expect(result.status == 2, "stderr: \(result.stderr)")
        #expect(result.stderr == "kvmrun: this /dev/kvm is KVM-PVM (no VMX/SVM): it cannot run a stock Linux guest; run inside scripts/with-kvm (nested test host)\n")
        #expect(result.stdout.isEmpty, "nothing of the guest ran: \(result.stdout)")
    }

    @Test("on KVM-PVM, --debug boots anyway and shows KVM's raw error",
          .enabled(if: hostIsPVM && access(E2E.vmlinux, R_OK) == 0, "needs a KVM-PVM host and firmware/out/vmlinux"))
    func pvmDebug() throws {
        let result = try E2E.run(["vm", "run", "--kernel", E2E.vmlinux, "--console", "none", "--debug"], timeout: 60)
        #expect(result.status == 2, "stderr: \(result.stderr)")
        #expect(result.stderr.contains("KVM internal error"), "stderr: \(result.stderr)")
        #expect(!result.stderr.contains("KVM-PVM"))
    }
}
