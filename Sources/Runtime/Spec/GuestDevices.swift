// linux.devices for the guest: the standard nodes every Linux has (memory devices, tty,
// console, ptmx) are created in the container by the agent; anything else names a host device
// (a disk, a GPU, /dev/fuse, /dev/kvm) that the microVM does not have, and is dropped.
import AgentProtocol
import OCI

enum GuestDevices {
    /// path → (type, major, minor) of the nodes the guest kernel always provides.
    static let standard: [String: (type: String, major: Int64, minor: Int64)] = [
        "/dev/null": ("c", 1, 3), "/dev/zero": ("c", 1, 5), "/dev/full": ("c", 1, 7),
        "/dev/random": ("c", 1, 8), "/dev/urandom": ("c", 1, 9),
        "/dev/tty": ("c", 5, 0), "/dev/console": ("c", 5, 1), "/dev/ptmx": ("c", 5, 2),
    ]

    static func keep(_ devices: [OCI.Spec.Device], warnings: inout [String]) -> [Grpc_LinuxDevice] {
        var kept: [Grpc_LinuxDevice] = []
        for device in devices {
            let type = device.type == "u" ? "c" : device.type
            if let known = standard[device.path], known.type == type, known.major == device.major, known.minor == device.minor {
                kept.append(.with {
                    $0.path = device.path
                    $0.type = device.type
                    $0.major = known.major
                    $0.minor = known.minor
                    $0.fileMode = device.fileMode ?? 0
                    $0.uid = device.uid ?? 0
                    $0.gid = device.gid ?? 0
                })
            } else {
                let numbers = device.type == "p" ? "" : " \(device.major ?? 0):\(device.minor ?? 0)"
                warnings.append("linux.devices: \(device.path) (\(device.type)\(numbers)) dropped: a host device the microVM does not have")
            }
        }
        return kept
    }
}
