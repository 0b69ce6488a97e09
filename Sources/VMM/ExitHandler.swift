import Devices
import KVM

/// What a vCPU does after an exit.
public enum VcpuAction: Equatable, Sendable {
    case resume
    /// The guest reset itself (triple fault or a reset/shutdown system event): the machine
    /// decides from guest memory whether that was a reboot or a panic.
    case guestReset
    case guestCrash
    case fail(String)
}

/// Handles one decoded exit against the buses: a plain function of (exit, buses), so tests can
/// feed it synthetic exits without /dev/kvm. Unmapped ports and MMIO read as zero and ignore
/// writes, as on a PC with nothing at that address.
public func handleExit(_ exit: VcpuExit, vcpu: UInt32, ports: Bus, mmio: Bus) -> VcpuAction {
    switch exit {
    case let .io(access):
        for index in 0..<access.count {
            access.withData(access: index) { data in
                if access.isWrite {
                    ports.write(UInt64(access.port), data: UnsafeRawBufferPointer(data))
                } else {
                    ports.read(UInt64(access.port), data: data)
                }
            }
        }
        return .resume
    case let .mmio(access):
        access.withData { data in
            if access.isWrite {
                mmio.write(access.address, data: UnsafeRawBufferPointer(data))
            } else {
                mmio.read(access.address, data: data)
            }
        }
        return .resume
    case .interrupted, .irqWindowOpen:
        return .resume
    case .halt:
        // Only reached without the in-kernel irqchip (tiny test guests): nothing will wake it.
        return .fail("vCPU \(vcpu) halted with interrupts unavailable (KVM_EXIT_HLT)")
    case .shutdown:
        FaultTrace.shutdownSeen(vcpu: vcpu)
        return .guestReset
    case let .systemEvent(type, _):
        switch type {
        case .shutdown, .reset: return .guestReset
        case .crash: return .guestCrash
        case let .other(code): return .fail("vCPU \(vcpu): unhandled KVM_EXIT_SYSTEM_EVENT type \(code)")
        }
    case let .failEntry(reason, cpu):
        return .fail("vCPU \(vcpu): KVM_EXIT_FAIL_ENTRY, hardware reason 0x\(String(reason, radix: 16)) on host CPU \(cpu)")
    case let .internalError(suberror, data):
        let detail = data.map { "0x" + String($0, radix: 16) }.joined(separator: " ")
        let what = suberror == 1 ? "emulation failure" : "suberror \(suberror)"
        return .fail("vCPU \(vcpu): KVM internal error (\(what))\(detail.isEmpty ? "" : ": " + detail)")
    case let .unknown(reason):
        return .fail("vCPU \(vcpu): unexpected KVM exit reason \(reason)")
    }
}
