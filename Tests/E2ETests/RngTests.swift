import Testing

/// virtio-rng inside a real guest: the kernel picks it as its hardware RNG and reads entropy from
/// it (firmware/initramfs/tests/rng.sh).
@Suite("virtio-rng in the guest", .serialized,
       .enabled(if: E2E.bootsEnabled, "needs a hardware-style KVM: `make test` runs these in the nested host (KVMRUN_E2E=1)"))
struct RngTests {
    @Test("/dev/hwrng is virtio_rng and yields 4096 non-zero bytes")
    func hwrng() throws {
        let result = try E2E.boot(extraCommandLine: "kvmrun.script=rng")
        #expect(result.stdout.contains("rng_current=virtio_rng"), "console: \(result.stdout.suffix(1500))")
        #expect(result.stdout.contains("rng_bytes=4096"))
        #expect(result.stdout.contains("KVMRUN_SCRIPT_EXIT=0"))
        #expect(result.status == 0, "stderr: \(result.stderr)")
    }
}
