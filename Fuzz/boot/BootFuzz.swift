import FuzzSupport
import Memory
@testable import VMM

// Kernel image parsing and loading: bzImage setup header, ELF program headers and PT_NOTEs
// (the PVH entry), then `loadLinux` into 32 MiB of guest RAM (the smallest kvmrun boots):
// placement, initrd, command line, zero page or PVH start info, MP table. Input: u8 vCPUs
// (1 + n % 64, so some are refused), u16 initrd size (× 4 KiB), u8 command-line length,
// the command line, then the kernel file. An ELF whose segments span more than 256 KiB is parsed
// and checked but not loaded: zeroing its bss would cost more than the rest of an execution.

private let memory = try! GuestMemory(layout: [(GuestAddress(0), MachineLayout.minimumMemory)])

/// Initrds by size (at most 64 sizes of up to 256 KiB), made once: a fresh array per execution
/// costs page faults that would dominate the target.
private nonisolated(unsafe) var initrds: [Int: [UInt8]] = [:]

private func initrdImage(size: Int) -> [UInt8] {
    if let image = initrds[size] { return image }
    let image = [UInt8](repeating: 0x5A, count: size)
    initrds[size] = image
    return image
}

@_cdecl("LLVMFuzzerTestOneInput")
func fuzzBoot(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzBytes(data, size)
    let cpus = 1 + Int(input.u8() % 64)
    let initrdSize = Int(input.u16()) * 4096
    let commandLine = String(decoding: input.take(Int(input.u8())), as: UTF8.self)
    let kernel = input.take(input.remaining)
    let image: KernelImage
    do {
        image = try KernelImage.detect(kernel)
    } catch {
        return 0
    }
    if case let .elf(elf) = image {
        _ = try? elf.physicalEntry()
        _ = elf.kernelEnd
        let footprint = elf.segments.reduce(UInt64(0)) { total, segment in
            let (sum, overflow) = total.addingReportingOverflow(segment.memorySize)
            return overflow ? .max : sum
        }
        guard footprint <= 256 << 10 else { return 0 }
    }
    // An initrd of up to 256 KiB is loaded; a larger one only placed (allocating and copying
    // megabytes would dominate every execution), against the kernel's end and a 32 MiB guest.
    var initrd: [UInt8]?
    if initrdSize > 256 << 10 {
        let (addressMax, kernelEnd): (UInt64, UInt64) = switch image {
        case let .bzImage(bzImage):
            (UInt64(bzImage.header.initrdAddrMax), bzImage.kernelEnd(loadAddress: MachineLayout.bzImageLoad.raw))
        case let .elf(elf):
            (ElfKernel.defaultInitrdAddrMax, elf.kernelEnd)
        }
        _ = try? InitrdPlacement.address(size: UInt64(initrdSize), addressMax: addressMax, kernelEnd: kernelEnd,
                                         lowRAMEnd: MachineLayout.minimumMemory)
    } else if initrdSize > 0 {
        initrd = initrdImage(size: initrdSize)
    }
    let config = BootConfig(kernel: kernel, initrd: initrd, commandLine: commandLine, cpus: cpus)
    _ = try? loadLinux(config, into: memory)
    return 0
}
