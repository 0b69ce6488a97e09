// The spec's mounts for a guest that shares no file system with the host. Kernel file systems
// pass through; a bind mount's host source is copied into the guest's shared directory (a
// file, or a small directory tree) and the mount's source becomes the copy; the bind of the
// engine's /dev/shm becomes a tmpfs of its own; anything else is refused, naming the mount.
import AgentProtocol
import OCI
import Sys

enum GuestMounts {
    /// File system types the guest mounts itself, as the spec gives them.
    static let passThroughTypes: Set<String> = ["proc", "sysfs", "tmpfs", "devpts", "mqueue", "cgroup", "cgroup2"]

    struct Result {
        var mounts: [Grpc_Mount] = []
        var copies: [GuestFileCopy] = []
        var warnings: [String] = []
    }

    static func translate(_ mounts: [OCI.Spec.Mount], sharedGuestDir: String) throws(RuntimeError) -> Result {
        var result = Result()
        var copiedFiles: [String] = []
        for (index, mount) in mounts.enumerated() {
            let options = mount.options ?? []
            let isBind = mount.type == "bind" || options.contains("bind") || options.contains("rbind")
            guard isBind else {
                let type = mount.type ?? ""
                guard passThroughTypes.contains(type) else {
                    throw .invalidInput("mount \(mount.destination): type \"\(type)\" cannot be mounted in the microVM (kvmrun passes \(passThroughTypes.sorted().joined(separator: ", ")) and copies bind mounts)")
                }
                result.mounts.append(grpc(mount))
                continue
            }
            if trimmed(mount.destination) == "/dev/shm" {
                let shm = sharedMemory(mount)
                result.mounts.append(shm)
                result.warnings.append("mount /dev/shm: the host's bind mount of \(mount.source ?? "?") replaced by a tmpfs in the guest (\(shm.options.joined(separator: ",")))")
                continue
            }
            switch try HostSource.copy(mount, index: index, sharedGuestDir: sharedGuestDir) {
            case let .file(copy):
                result.copies.append(copy)
                result.mounts.append(rebound(mount, source: copy.guestPath))
                copiedFiles.append(mount.destination)
            case let .directory(guestPath, copies, warnings):
                result.copies += copies
                result.mounts.append(rebound(mount, source: guestPath))
                result.warnings += warnings
            case let .dropped(warning):
                result.warnings.append(warning)
            }
        }
        if !copiedFiles.isEmpty {
            let what = copiedFiles.count == 1 ? "mount \(copiedFiles[0]): a host file" : "mounts \(copiedFiles.joined(separator: ", ")): host files"
            result.warnings.append("\(what) copied into the guest (snapshots: later changes on either side are not seen by the other)")
        }
        return result
    }

    static func grpc(_ mount: OCI.Spec.Mount) -> Grpc_Mount {
        .with {
            $0.destination = mount.destination
            $0.source = mount.source ?? ""
            $0.type = mount.type ?? ""
            $0.options = mount.options ?? []
        }
    }

    /// A bind mount of the copy at `source` (always of type "bind", with bind or rbind).
    static func rebound(_ mount: OCI.Spec.Mount, source: String) -> Grpc_Mount {
        var options = mount.options ?? []
        if !options.contains("bind"), !options.contains("rbind") { options.insert("rbind", at: 0) }
        return .with {
            $0.destination = mount.destination
            $0.source = source
            $0.type = "bind"
            $0.options = options
        }
    }

    /// The engine's /dev/shm (a host tmpfs bind-mounted in) as the guest's own tmpfs: the
    /// mount's flags kept, mode 1777 and 64 MiB unless the options say otherwise.
    static func sharedMemory(_ mount: OCI.Spec.Mount) -> Grpc_Mount {
        let dropped: Set<String> = ["bind", "rbind", "private", "rprivate", "shared", "rshared", "slave", "rslave",
                                    "unbindable", "runbindable"]
        var options = (mount.options ?? []).filter { !dropped.contains($0) }
        if !options.contains(where: { $0.hasPrefix("mode=") }) { options.append("mode=1777") }
        if !options.contains(where: { $0.hasPrefix("size=") }) { options.append("size=64m") }
        return .with {
            $0.destination = mount.destination
            $0.source = "shm"
            $0.type = "tmpfs"
            $0.options = options
        }
    }

    static func trimmed(_ path: String) -> String {
        var path = path
        while path.count > 1, path.hasSuffix("/") { path.removeLast() }
        return path
    }
}
