#if canImport(Glibc)
import Glibc
#endif
import Harness
import Testing

/// virtio-mem resized at runtime through the control API (`kvmrun vm memory --size`), checked in
/// the guest's /proc/meminfo by firmware/initramfs/tests/mem_resize.sh, which prints a
/// MEM_PHASE line once MemTotal reached each expected size.
@Suite("virtio-mem through the control API", .serialized,
       .enabled(if: E2E.bootsEnabled, "needs a hardware-style KVM: `make test` runs these in the nested host (KVMRUN_E2E=1)"))
struct MemAPITests {
    @Test("MemTotal grows at boot, shrinks after `vm memory --size 128M`, grows after `--size 768M`; exit 0")
    func resizeThroughAPI() throws {
        let socket = E2E.temporaryPath("mem-api.sock")
        defer { unlink(socket) }
        let vm = try ChildProcess(executable: E2E.binary, arguments: [
            "vm", "run", "--kernel", E2E.vmlinux, "--initrd", E2E.initramfs, "--memory", "256M,hotplug=1G,requested=512M",
            "--cmdline", "console=ttyS0 reboot=k panic=-1 kvmrun.script=mem_resize", "--api-socket", socket,
        ])
        defer {
            vm.signal(SIGKILL)
            _ = vm.waitForExit(timeoutMilliseconds: 5000)
        }
        func console() -> String { String(decoding: vm.stdoutText, as: UTF8.self) }
        func phase(_ name: String) -> Bool {
            guard vm.waitForStdout(containing: "MEM_PHASE=\(name)", timeoutMilliseconds: 600_000) != nil else {
                let stderr = String(decoding: vm.stderrText, as: UTF8.self)
                Issue.record("no MEM_PHASE=\(name); exit \(String(describing: vm.waitForExit(timeoutMilliseconds: 0))); stderr: \(stderr); console: \(console().suffix(3000))")
                return false
            }
            return true
        }
        func client(_ arguments: [String]) throws -> E2E.Result {
            try E2E.run(["vm", "memory"] + arguments + ["--api-socket", socket], timeout: 60)
        }

        guard phase("grown") else { return }
        let status = try client([])
        #expect(status.status == 0, "stderr: \(status.stderr)")
        #expect(status.stdout.contains(#""plugged_size_mib":512"#), "reply: \(status.stdout)")
        #expect(status.stdout.contains(#""total_size_mib":1024"#), "reply: \(status.stdout)")

        let shrink = try client(["--size", "128M"])
        #expect(shrink.status == 0, "stderr: \(shrink.stderr)")
        guard phase("shrunk") else { return }
        #expect(try client([]).stdout.contains(#""plugged_size_mib":128"#))

        let beyond = try client(["--size", "2G"])
        #expect(beyond.status != 0, "a size beyond the region must be refused")
        #expect(!beyond.stderr.isEmpty)

        let grow = try client(["--size", "768M"])
        #expect(grow.status == 0, "stderr: \(grow.stderr)")
        guard phase("regrown") else { return }
        #expect(vm.waitForExit(timeoutMilliseconds: 120_000) == 0, "stderr: \(String(decoding: vm.stderrText, as: UTF8.self))")
        #expect(console().contains("KVMRUN_SCRIPT_EXIT=0"), "console: \(console().suffix(2000))")
    }
}
