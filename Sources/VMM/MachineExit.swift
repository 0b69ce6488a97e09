/// How a VM run ended, and what that means for kvmrun's exit status.
public enum MachineExit: Equatable, Sendable, CustomStringConvertible {
    /// The guest rebooted or powered off through the configured reboot method.
    case guestShutdown
    /// The guest kernel panicked (it reset with the "panic" warm-reboot flag, or reported a crash).
    case guestPanic
    /// The guest triple-faulted outside an orderly reboot (on this vCPU, when known).
    case tripleFault(vcpu: UInt32?)
    /// KVM failed or reported something the VMM cannot continue from.
    case failure(String)
    /// A termination signal stopped the VM.
    case signal(Int32)

    /// 0 for an orderly guest shutdown; 1 for a guest failure; 2 for a VMM/KVM failure;
    /// 128 + N for signal N.
    public var exitStatus: Int32 {
        switch self {
        case .guestShutdown: return 0
        case .guestPanic, .tripleFault: return 1
        case .failure: return 2
        case let .signal(number): return 128 + number
        }
    }

    public var description: String {
        switch self {
        case .guestShutdown: return "guest shut down"
        case .guestPanic: return "guest kernel panicked"
        case let .tripleFault(vcpu):
            let on = vcpu.map { " on vCPU \($0)" } ?? ""
            return "guest triple fault\(on) (KVM_EXIT_SHUTDOWN outside a reboot)"
        case let .failure(reason): return reason
        case let .signal(number): return "stopped by signal \(number)"
        }
    }
}
