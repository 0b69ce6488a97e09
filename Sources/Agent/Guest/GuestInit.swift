// The agent as the guest's PID 1: leave the boot root (an initramfs, or the read-only agent
// disk) for a tmpfs root, mount the kernel's file systems, set the hostname, bring up loopback.
// Runs first thing in main (before any thread), logging each failure; a missing mount is
// logged, not fatal, so the agent still answers and can say what is wrong.
//
// Why leave the initramfs: pivot_root(2) refuses to move the initial rootfs, and a container's
// root must be entered with pivot_root (not chroot) so that the agent's mounts are detached
// from its view. Why leave the read-only disk: the agent writes /etc (resolv.conf, hosts) and
// makes mount points at its root. The agent's own binary stays where it is (bind-mounted into
// the new root), nothing is copied.
#if canImport(Glibc)
import Glibc
#endif
import CAgent
import Sys

public enum GuestInit {
    /// The file systems a guest needs, in order (/proc first).
    static let mounts: [(source: String, target: String, type: String, flags: UInt, data: String?)] = [
        ("proc", "/proc", "proc", KVMRUN_MS_NOSUID | KVMRUN_MS_NODEV | KVMRUN_MS_NOEXEC, nil),
        ("sysfs", "/sys", "sysfs", KVMRUN_MS_NOSUID | KVMRUN_MS_NODEV | KVMRUN_MS_NOEXEC, nil),
        ("devtmpfs", "/dev", "devtmpfs", KVMRUN_MS_NOSUID, "mode=0755"),
        ("devpts", "/dev/pts", "devpts", KVMRUN_MS_NOSUID | KVMRUN_MS_NOEXEC, "gid=5,mode=0620,ptmxmode=0666"),
        ("tmpfs", "/dev/shm", "tmpfs", KVMRUN_MS_NOSUID | KVMRUN_MS_NODEV, "mode=1777"),
        ("tmpfs", "/run", "tmpfs", KVMRUN_MS_NOSUID | KVMRUN_MS_NODEV, "mode=0755"),
        ("tmpfs", "/tmp", "tmpfs", KVMRUN_MS_NOSUID | KVMRUN_MS_NODEV, "mode=1777"),
        ("cgroup2", "/sys/fs/cgroup", "cgroup2", KVMRUN_MS_NOSUID | KVMRUN_MS_NODEV | KVMRUN_MS_NOEXEC, nil),
    ]

    /// Everything PID 1 sets up. `binary` is the agent's own path in the boot root (/init).
    public static func setUp(binary: String = "/init", hostname: String = "kvmrun") {
        signal(SIGPIPE, SIG_IGN)
        if let error = leaveBootRoot(binary: binary) { Log.error(error) }
        for mount in mounts {
            _ = mkdir(mount.target, 0o755)
            if Glibc.mount(mount.source, mount.target, mount.type, mount.flags, mount.data) != 0, errno != EBUSY {
                Log.error("mount \(mount.type) on \(mount.target): \(SystemError(call: "mount", errno: errno))")
            }
        }
        _ = mkdir("/etc", 0o755)
        if sethostname(hostname, hostname.utf8.count) != 0 { Log.error("sethostname \(hostname): errno \(errno)") }
        do {
            try Netlink.setLinkUp(name: "lo")
        } catch {
            Log.error("loopback: \(error)")
        }
    }

    /// Moves the root to a tmpfs (switch_root without deleting anything). Returns an error
    /// text, or nil when done (or not needed: the root is neither an initramfs nor read-only).
    static func leaveBootRoot(binary: String) -> String? {
        var info = statfs()
        guard statfs("/", &info) == 0 else { return "statfs /: errno \(errno)" }
        let type = UInt(bitPattern: Int(info.f_type))
        let readOnly = (UInt(bitPattern: Int(info.f_flags)) & KVMRUN_ST_RDONLY) != 0
        guard type == KVMRUN_RAMFS_MAGIC || type == KVMRUN_TMPFS_MAGIC || readOnly, !Files.exists("/.kvmrun-root") else { return nil }
        let newRoot = "/.root"   // in the agent disk's image; made here on an initramfs
        _ = mkdir(newRoot, 0o755)
        guard Glibc.mount("tmpfs", newRoot, "tmpfs", 0, "mode=0755") == 0 else { return "mount tmpfs on \(newRoot): errno \(errno)" }
        let target = newRoot + binary
        let fd = open(target, O_WRONLY | O_CREAT | O_CLOEXEC, 0o755)
        if fd >= 0 { close(fd) }
        guard Glibc.mount(binary, target, nil, KVMRUN_MS_BIND, nil) == 0 else { return "bind \(binary) into the new root: errno \(errno)" }
        _ = Glibc.mount(nil, target, nil, KVMRUN_MS_BIND | KVMRUN_MS_REMOUNT | KVMRUN_MS_RDONLY, nil)
        _ = Files.touch(newRoot + "/.kvmrun-root")
        guard chdir(newRoot) == 0, Glibc.mount(".", "/", nil, KVMRUN_MS_MOVE, nil) == 0 else { return "move \(newRoot) to /: errno \(errno)" }
        guard chroot(".") == 0, chdir("/") == 0 else { return "chroot into the new root: errno \(errno)" }
        return nil
    }
}

extension Files {
    /// Creates an empty file if there is none.
    static func touch(_ path: String) -> Bool {
        let fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return false }
        close(fd)
        return true
    }
}
