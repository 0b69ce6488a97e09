import CKVM

/// Why KVM_RUN returned, decoded right after the call. Exit data that the VMM must read or
/// answer (port I/O, MMIO) is reached only inside `withData` closures, so no pointer into the
/// shared `kvm_run` page escapes; the data is valid until the vCPU runs again.
public enum VcpuExit: Sendable {
    /// An `in`/`out` (possibly `rep ins`/`rep outs`, then `count` > 1) to `port`.
    case io(PortIO)
    /// A load or store to an address with no memory slot.
    case mmio(MMIOAccess)
    /// `hlt` with no in-kernel irqchip.
    case halt
    /// Triple fault or another reset-worthy condition in the guest.
    case shutdown
    /// VM entry failed; the hardware reason (VMX/SVM exit code) says why.
    case failEntry(hardwareReason: UInt64, cpu: UInt32)
    /// KVM could not handle something (emulation failure and the like).
    case internalError(suberror: UInt32, data: [UInt64])
    /// The guest asked for shutdown, reset or reported a crash through a paravirtual path.
    case systemEvent(SystemEventType, data: [UInt64])
    /// KVM_RUN was interrupted by a signal or `immediate_exit`: the VMM asked for this.
    case interrupted
    /// The guest can take an interrupt now (only with a userspace irqchip).
    case irqWindowOpen
    /// An exit reason kvmrun does not handle; reported, never ignored.
    case unknown(reason: UInt32)

    public enum SystemEventType: Equatable, Sendable {
        case shutdown, reset, crash, other(UInt32)
    }

    /// A short name for logs and error messages.
    public var name: String {
        switch self {
        case .io: return "KVM_EXIT_IO"
        case .mmio: return "KVM_EXIT_MMIO"
        case .halt: return "KVM_EXIT_HLT"
        case .shutdown: return "KVM_EXIT_SHUTDOWN"
        case .failEntry: return "KVM_EXIT_FAIL_ENTRY"
        case .internalError: return "KVM_EXIT_INTERNAL_ERROR"
        case .systemEvent: return "KVM_EXIT_SYSTEM_EVENT"
        case .interrupted: return "KVM_EXIT_INTR"
        case .irqWindowOpen: return "KVM_EXIT_IRQ_WINDOW_OPEN"
        case let .unknown(reason): return "exit reason \(reason)"
        }
    }

    static func decode(_ run: UnsafeMutablePointer<kvm_run>, vcpu: VCPU) -> VcpuExit {
        let reason = Int32(bitPattern: run.pointee.exit_reason)
        switch reason {
        case KVM_EXIT_IO:
            let io = run.pointee.io
            let length = Int(io.size) * Int(io.count)
            // SAFETY: KVM places the I/O data inside the kvm_run mapping at data_offset; the
            // range is checked against the mapping size before use.
            let base = UnsafeMutableRawPointer(run).advanced(by: Int(io.data_offset))
            let valid = Int(io.data_offset) + length <= vcpu.mapSize
            let buffer = UnsafeMutableRawBufferPointer(start: base, count: valid ? length : 0)
            return .io(PortIO(port: io.port, size: Int(io.size), count: valid ? Int(io.count) : 0,
                              isWrite: io.direction == UInt8(KVM_EXIT_IO_OUT), data: buffer))
        case KVM_EXIT_MMIO:
            let address = run.pointee.mmio.phys_addr
            let length = min(Int(run.pointee.mmio.len), 8)
            let isWrite = run.pointee.mmio.is_write != 0
            // SAFETY: mmio.data is an 8-byte array inside the kvm_run mapping; length is clamped to 8.
            let data = UnsafeMutableRawBufferPointer(start: kvmrun_run_mmio_data(run), count: length)
            return .mmio(MMIOAccess(address: address, isWrite: isWrite, data: data))
        case KVM_EXIT_HLT:
            return .halt
        case KVM_EXIT_SHUTDOWN:
            return .shutdown
        case KVM_EXIT_FAIL_ENTRY:
            return .failEntry(hardwareReason: run.pointee.fail_entry.hardware_entry_failure_reason,
                              cpu: run.pointee.fail_entry.cpu)
        case KVM_EXIT_INTERNAL_ERROR:
            let info = run.pointee.`internal`
            let count = min(Int(info.ndata), 16)
            let data = withUnsafeBytes(of: info.data) { raw in
                (0..<count).map { raw.loadUnaligned(fromByteOffset: $0 * 8, as: UInt64.self) }
            }
            return .internalError(suberror: info.suberror, data: data)
        case KVM_EXIT_SYSTEM_EVENT:
            let event = run.pointee.system_event
            let type: SystemEventType
            switch Int32(event.type) {
            case KVM_SYSTEM_EVENT_SHUTDOWN: type = .shutdown
            case KVM_SYSTEM_EVENT_RESET: type = .reset
            case KVM_SYSTEM_EVENT_CRASH: type = .crash
            default: type = .other(event.type)
            }
            let count = min(Int(event.ndata), 16)
            let data = withUnsafeBytes(of: event.data) { raw in
                (0..<count).map { raw.loadUnaligned(fromByteOffset: $0 * 8, as: UInt64.self) }
            }
            return .systemEvent(type, data: data)
        case KVM_EXIT_INTR:
            return .interrupted
        case KVM_EXIT_IRQ_WINDOW_OPEN:
            return .irqWindowOpen
        default:
            return .unknown(reason: UInt32(bitPattern: reason))
        }
    }
}

/// A port I/O exit. For `out` the data holds what the guest wrote; for `in` the VMM fills it.
/// `count` > 1 for string I/O: `count` consecutive accesses of `size` bytes.
public struct PortIO: @unchecked Sendable {
    public let port: UInt16
    public let size: Int
    public let count: Int
    public let isWrite: Bool
    private let data: UnsafeMutableRawBufferPointer

    /// `data` must stay valid while the value is used: the kvm_run page until the next KVM_RUN,
    /// or a test's own buffer.
    public init(port: UInt16, size: Int, count: Int, isWrite: Bool, data: UnsafeMutableRawBufferPointer) {
        self.port = port
        self.size = size
        self.count = count
        self.isWrite = isWrite
        self.data = data
    }

    /// Runs `body` on the data of access `index` (`size` bytes).
    @discardableResult
    public func withData<R>(access index: Int = 0, _ body: (UnsafeMutableRawBufferPointer) throws -> R) rethrows -> R {
        precondition(index < count, "port I/O access index out of range")
        // SAFETY: index < count and data holds size * count bytes.
        return try body(UnsafeMutableRawBufferPointer(rebasing: data[(index * size)..<((index + 1) * size)]))
    }
}

/// An MMIO exit: a load the VMM answers by filling the data, or a store whose data it reads.
public struct MMIOAccess: @unchecked Sendable {
    public let address: UInt64
    public let isWrite: Bool
    private let data: UnsafeMutableRawBufferPointer

    public var length: Int { data.count }

    /// `data` must stay valid while the value is used (see `PortIO.init`).
    public init(address: UInt64, isWrite: Bool, data: UnsafeMutableRawBufferPointer) {
        self.address = address
        self.isWrite = isWrite
        self.data = data
    }

    /// Runs `body` on the access's 1 to 8 data bytes.
    @discardableResult
    public func withData<R>(_ body: (UnsafeMutableRawBufferPointer) throws -> R) rethrows -> R {
        try body(data)
    }
}
