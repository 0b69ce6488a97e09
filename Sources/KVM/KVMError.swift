import Sys

/// Errors of the KVM layer. Each names the step that failed.
public enum KVMError: Error, CustomStringConvertible, Equatable, Sendable {
    /// /dev/kvm is absent.
    case deviceMissing(path: String)
    /// /dev/kvm exists but cannot be opened by this user.
    case permissionDenied(path: String)
    /// KVM_GET_API_VERSION returned something other than 12.
    case unsupportedAPIVersion(Int32)
    /// A capability kvmrun needs is not offered by this kernel.
    case missingCapability(name: String)
    /// A KVM ioctl (or mmap of a vCPU) failed.
    case ioctl(SystemError)
    /// A request the VMM made was out of range (vCPU count, slot number, CPUID table size).
    case invalidArgument(String)

    public var description: String {
        switch self {
        case let .deviceMissing(path):
            return "\(path) does not exist: KVM is not available (load kvm_intel/kvm_amd, or run inside a VM with nested virtualization)"
        case let .permissionDenied(path):
            return "\(path): permission denied (add this user to the 'kvm' group or run as root)"
        case let .unsupportedAPIVersion(version):
            return "KVM_GET_API_VERSION returned \(version); kvmrun needs API version 12"
        case let .missingCapability(name):
            return "KVM lacks capability \(name), which kvmrun requires"
        case let .ioctl(error):
            return error.description
        case let .invalidArgument(message):
            return message
        }
    }
}

@discardableResult
@inline(__always)
func kvmCall<T: BinaryInteger>(_ name: @autoclosure () -> String, _ body: () -> T) throws(KVMError) -> T {
    do {
        return try sys(name(), body)
    } catch {
        throw .ioctl(error)
    }
}
