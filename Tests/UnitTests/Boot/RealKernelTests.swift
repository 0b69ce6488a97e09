import Memory
import Testing
@testable import VMM

/// The kernels the firmware helper builds into firmware/out/; skipped when absent.
@Suite("Real kernels from firmware/out")
struct RealKernelTests {
    @Test(.enabled(if: FirmwareKernel.exists("bzImage"), "firmware/out/bzImage not built; skipping"))
    func loadsTheBzImage() throws {
        let kernel = try #require(FirmwareKernel.read("bzImage"))
        guard case .bzImage(let image) = try KernelImage.detect(kernel) else {
            Issue.record("firmware/out/bzImage is not detected as a bzImage"); return
        }
        #expect(image.header.version >= 0x020C)
        let memory = try TestMemory.make(256 * .mib)
        let setup = try loadLinux(BootConfig(kernel: kernel, initrd: [1, 2, 3], commandLine: "console=ttyS0", cpus: 2),
                                  into: memory)
        #expect(setup.format == .bzImage)
        #expect(setup.cpu.rip == 0x10_0200)
        #expect(setup.kernelEnd.raw > 0x100_0000)
        let page = try memory.read(count: 4096, at: MachineLayout.zeroPage)
        #expect(page.readLE(UInt32.self, at: 0x202) == 0x5372_6448)
    }

    @Test(.enabled(if: FirmwareKernel.exists("vmlinux"), "firmware/out/vmlinux not built; skipping"))
    func loadsTheVmlinux() throws {
        let kernel = try #require(FirmwareKernel.read("vmlinux"))
        guard case .elf(let elf) = try KernelImage.detect(kernel) else {
            Issue.record("firmware/out/vmlinux is not detected as ELF"); return
        }
        let memory = try TestMemory.make(256 * .mib)
        let setup = try loadLinux(BootConfig(kernel: kernel, commandLine: "console=ttyS0"), into: memory)
        #expect(setup.format == (elf.pvhEntry == nil ? .elf64 : .elfPVH))
        #expect(setup.kernelEnd.raw == elf.kernelEnd)
        // x86 vmlinux's e_entry is physical (phys_startup_64).
        #expect(try elf.physicalEntry() == elf.entry)
    }
}
