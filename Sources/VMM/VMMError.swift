/// Errors of the VMM layer that are not KVM's, memory's or the boot loader's own.
public enum VMMError: Error, CustomStringConvertible, Equatable {
    case setup(String)
    case config(String)

    public var description: String {
        switch self {
        case let .setup(message): return message
        case let .config(message): return message
        }
    }
}
