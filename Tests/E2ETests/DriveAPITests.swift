#if canImport(Glibc)
import Glibc
#endif
import Harness
import Testing

/// A drive's backing file swapped through the control API while the guest runs
/// (`kvmrun vm drive --id … --path …`): the guest sees the new capacity and the new bytes
/// (firmware/initramfs/tests/blk-resize.sh) — how the runtime attaches root filesystems.
@Suite("virtio-blk backing-file update through the control API", .serialized,
       .enabled(if: E2E.bootsEnabled, "needs a hardware-style KVM: `make test` runs these in the nested host (KVMRUN_E2E=1)"))
struct DriveAPITests {
    @Test("the guest sees the new image's size and first bytes; a bad id or path is refused and the VM runs on")
    func swapBackingFile() throws {
        let socket = E2E.temporaryPath("drive-api.sock")
        let first = E2E.temporaryPath("drive-first.img")
        let second = E2E.temporaryPath("drive-second.img")
        defer { for path in [socket, first, second] { unlink(path) } }
        E2E.writeFile(first, [UInt8](repeating: 0x41, count: 1 << 20))
        var secondBytes = Array("KVMRUN-SECOND-IM".utf8)
        secondBytes += [UInt8](repeating: 0x42, count: (4 << 20) - secondBytes.count)
        E2E.writeFile(second, secondBytes)

        let vm = try ChildProcess(executable: E2E.binary, arguments: [
            "vm", "run", "--kernel", E2E.vmlinux, "--initrd", E2E.initramfs, "--memory", "128M",
            "--disk", "path=\(first),id=rootfs", "--api-socket", socket,
            "--cmdline", "console=ttyS0 reboot=k panic=-1 kvmrun.script=blk-resize",
        ])
        defer {
            vm.signal(SIGKILL)
            _ = vm.waitForExit(timeoutMilliseconds: 5000)
        }
        func console() -> String { String(decoding: vm.stdoutText, as: UTF8.self) }
        guard vm.waitForStdout(containing: "blk_resize before=", timeoutMilliseconds: 120_000) != nil else {
            Issue.record("the guest script did not start; console: \(console().suffix(2000))")
            return
        }

        func drive(_ id: String, _ path: String) throws -> E2E.Result {
            try E2E.run(["vm", "drive", "--id", id, "--path", path, "--api-socket", socket], timeout: 60)
        }
        let unknown = try drive("nosuch", second)
        #expect(unknown.status == 1 && unknown.stderr.contains("nosuch"), "stderr: \(unknown.stderr)")
        let missing = try drive("rootfs", second + ".missing")
        #expect(missing.status == 1 && missing.stderr.contains(".missing"), "stderr: \(missing.stderr)")

        let swap = try drive("rootfs", second)
        #expect(swap.status == 0, "stderr: \(swap.stderr)")
        guard vm.waitForStdout(containing: "KVMRUN_SCRIPT_EXIT=", timeoutMilliseconds: 120_000) != nil else {
            Issue.record("the guest never saw the new capacity; console: \(console().suffix(2000))")
            return
        }
        #expect(vm.waitForExit(timeoutMilliseconds: 120_000) == 0, "stderr: \(String(decoding: vm.stderrText, as: UTF8.self))")
        vm.drain(timeoutMilliseconds: 1000)
        #expect(BlockImages.field(console(), line: "blk_resize before", key: "before") == "2048")
        #expect(BlockImages.field(console(), line: "blk_resize after", key: "after") == "8192")
        #expect(console().contains("blk_resize head=KVMRUN-SECOND-IM"), "console: \(console().suffix(1500))")
        #expect(console().contains("KVMRUN_SCRIPT_EXIT=0"))
    }
}
