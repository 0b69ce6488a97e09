import Memory

/// Everything that can go wrong while preparing a Linux guest for its first instruction.
/// Each message names the step (memory sizing, bzImage/ELF parsing, initrd placement,
/// MP table, ...) and, for kernel files, the part of the file that is wrong.
public enum BootError: Error, CustomStringConvertible, Equatable, Sendable {
    /// Guest RAM is below `MachineLayout.minimumMemory`.
    case memoryTooSmall(size: UInt64, minimum: UInt64)
    /// The memory size or region layout cannot be used (unaligned, no RAM at 0, ...).
    case badMemoryLayout(String)
    /// Neither ELF magic nor a bzImage setup header.
    case notALinuxKernel
    /// The bzImage setup header or payload is invalid.
    case bzImage(String)
    /// The ELF vmlinux is malformed or unsupported.
    case elf(String)
    /// The kernel command line is too long or contains bytes the kernel cannot take.
    case commandLine(String)
    /// The initrd does not fit between the kernel's end and `limit`.
    case initrdTooLarge(size: UInt64, limit: GuestAddress, kernelEnd: GuestAddress)
    /// The MP table cannot describe this machine.
    case mpTable(String)
    /// Writing a boot structure into guest memory failed.
    case guestMemory(step: String, MemoryError)
    /// Reading the kernel or initrd file failed (an I/O error, or it shrank while being read).
    case file(String)

    public var description: String {
        switch self {
        case let .memoryTooSmall(size, minimum):
            return "memory: \(describeSize(size)) of guest RAM is too small; kvmrun needs at least \(describeSize(minimum))"
        case let .badMemoryLayout(reason):
            return "memory: \(reason)"
        case .notALinuxKernel:
            return "KERNEL: not a Linux kernel (no ELF magic, no bzImage setup header)"
        case let .bzImage(reason):
            return "bzImage: \(reason)"
        case let .elf(reason):
            return "ELF kernel: \(reason)"
        case let .commandLine(reason):
            return "kernel command line: \(reason)"
        case let .initrdTooLarge(size, limit, kernelEnd):
            return "initrd (\(describeSize(size))) does not fit in guest memory below \(limit) "
                + "and above the kernel's end at \(kernelEnd)"
        case let .mpTable(reason):
            return "MP table: \(reason)"
        case let .guestMemory(step, error):
            return "\(step): \(error)"
        case let .file(reason):
            return reason
        }
    }
}

/// "64 MiB", "1.5 MiB" or "300 bytes": sizes as a person reads them in an error message.
func describeSize(_ bytes: UInt64) -> String {
    if bytes >= .gib && bytes % .gib == 0 { return "\(bytes / .gib) GiB" }
    if bytes >= .mib {
        let tenths = (bytes % .mib) * 10 / .mib
        return tenths == 0 && bytes % .mib == 0 ? "\(bytes / .mib) MiB" : "\(bytes / .mib).\(tenths) MiB"
    }
    return "\(bytes) bytes"
}

/// "0x1234" for addresses and magic numbers in messages.
func hexString<T: BinaryInteger>(_ value: T) -> String { "0x" + String(value, radix: 16) }
