#if canImport(Glibc)
import Glibc
#endif
import CTap
import Sys

/// A TAP interface opened through /dev/net/tun with IFF_VNET_HDR (12-byte virtio-net headers).
/// `open` attaches to an existing tap or creates one. A created tap is not persistent: the
/// kernel removes it when its file descriptor closes, so the VMM removes exactly what it
/// created and leaves an existing tap in place.
public final class Tap: NetBackend, @unchecked Sendable {
    public let name: String
    /// Whether this tap was created here (and vanishes with the file descriptor).
    public let created: Bool
    private let file: FileDescriptor

    public var fd: Int32 { file.raw }
    public var label: String { "tap \(name)" }

    /// Why a tap could not be opened; the message names the tap and the failing step.
    public struct OpenError: Error, CustomStringConvertible, Equatable, Sendable {
        public let message: String
        public let errno: Int32
        public var description: String { message }
    }

    private init(name: String, created: Bool, file: FileDescriptor) {
        self.name = name
        self.created = created
        self.file = file
    }

    /// Whether an interface called `name` exists.
    public static func exists(_ name: String) -> Bool { kvmrun_if_index(name) != 0 }

    /// Attaches to tap `name`, creating it (and bringing it up) if no interface has that name.
    public static func open(name: String) throws(OpenError) -> Tap {
        let create = !exists(name)
        let raw: Int32
        do {
            raw = try sys("TUNSETIFF") { kvmrun_tap_open(name, create ? 1 : 0) }
        } catch {
            throw OpenError(message: explain(error, name: name, creating: create), errno: error.errno)
        }
        let tap = Tap(name: name, created: create, file: FileDescriptor(raw))
        do {
            try sys("TUNSETVNETHDRSZ \(NetSpec.headerSize)") { kvmrun_tap_set_vnet_header_size(raw, Int32(NetSpec.headerSize)) }
            // No offloads until a driver accepts some.
            try sys("TUNSETOFFLOAD 0") { kvmrun_tap_set_offload(raw, 0) }
            if create { try sys("bringing it up (SIOCSIFFLAGS IFF_UP)") { kvmrun_if_set_up(name) } }
        } catch {
            throw OpenError(message: "tap \(name): \(error)", errno: error.errno)
        }
        return tap
    }

    public func setOffloads(_ flags: UInt32) throws(VirtioDeviceError) {
        do {
            try sys("TUNSETOFFLOAD 0x\(String(flags, radix: 16))") { kvmrun_tap_set_offload(file.raw, flags) }
        } catch {
            throw VirtioDeviceError("\(label): \(error)")
        }
    }

    private static func explain(_ error: SystemError, name: String, creating: Bool) -> String {
        let action = creating ? "cannot create tap \(name)" : "cannot attach to tap \(name)"
        switch error.errno {
        case EPERM, EACCES:
            return "\(action): \(error.errnoName), permission denied (needs CAP_NET_ADMIN, or to be the tap's owner)"
        case EBUSY:
            return creating ? "\(action): EBUSY, an interface of that name appeared meanwhile"
                : "\(action): EBUSY, it is in use (another process has it open?)"
        case EINVAL:
            return "\(action): EINVAL (\(name) is not a single-queue tap: a tun, a multi-queue tap or another kind of interface?)"
        case ENOENT, ENODEV:
            return "\(action): /dev/net/tun is missing (\(error.errnoName); load the tun module)"
        default:
            return "\(action): \(error)"
        }
    }
}
