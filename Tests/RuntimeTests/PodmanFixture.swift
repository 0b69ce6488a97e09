#if canImport(Glibc)
import Glibc
#endif

/// The config.json rootful podman (4.x/5.x, cgroup v2, systemd cgroup manager) writes for a
/// container in a pod: the default mounts (kernel file systems, the files it keeps in the
/// container's userdata directory bind-mounted in, its /dev/shm tmpfs bound in), the pod's
/// network/ipc/uts namespaces joined by path (the infra container's, PID 4242), a systemd
/// cgroupsPath, the default capabilities, rlimits, AppArmor profile, sysctl, masked and
/// read-only paths, resources from `--memory 256m --cpus 0.5 --cpu-shares 512`, a hook and
/// seccomp (neither in kvmrun's model: ignored), `--device /dev/fuse` and a /dev/null entry.
/// `userdata` and `secrets` are host directories the test fills.
enum PodmanFixture {
    static let podID = "8c2a5e01d0b64f7c9e0d2b3a4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b2c3d"
    static let containerID = "3f9e2c1b0a99887766554433221100ffeeddccbbaa99887766554433221100aa"

    static func config(userdata: String, secrets: String) -> String {
        let caps = #"["CAP_CHOWN","CAP_DAC_OVERRIDE","CAP_FOWNER","CAP_FSETID","CAP_KILL","CAP_NET_BIND_SERVICE","CAP_SETFCAP","CAP_SETGID","CAP_SETPCAP","CAP_SETUID","CAP_SYS_CHROOT"]"#
        return """
        {
          "ociVersion": "1.2.0",
          "process": {
            "user": {"uid": 0, "gid": 0, "umask": 18, "additionalGids": [0]},
            "args": ["/bin/sh", "-c", "echo hi"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm", "container=podman", "HOSTNAME=web"],
            "cwd": "/",
            "capabilities": {"bounding": \(caps), "effective": \(caps), "permitted": \(caps)},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1048576, "soft": 1048576},
                        {"type": "RLIMIT_NPROC", "hard": 4194304, "soft": 4194304}],
            "apparmorProfile": "containers-default-0.57.4",
            "oomScoreAdj": 0
          },
          "root": {"path": "/var/lib/containers/storage/overlay/0d1e2f3a4b5c/merged"},
          "hostname": "web",
          "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/etc/resolv.conf", "type": "bind", "source": "\(userdata)/resolv.conf", "options": ["bind", "rprivate"]},
            {"destination": "/etc/hosts", "type": "bind", "source": "\(userdata)/hosts", "options": ["bind", "rprivate"]},
            {"destination": "/dev/shm", "type": "bind", "source": "\(userdata)/shm", "options": ["bind", "rprivate", "nosuid", "noexec", "nodev"]},
            {"destination": "/etc/hostname", "type": "bind", "source": "\(userdata)/hostname", "options": ["bind", "rprivate"]},
            {"destination": "/run/.containerenv", "type": "bind", "source": "\(userdata)/.containerenv", "options": ["bind", "rprivate"]},
            {"destination": "/run/secrets", "type": "bind", "source": "\(secrets)", "options": ["bind", "rprivate", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["rprivate", "nosuid", "noexec", "nodev", "relatime", "ro"]}
          ],
          "annotations": {
            "io.container.manager": "libpod",
            "io.podman.annotations.autoremove": "TRUE",
            "org.opencontainers.image.stopSignal": "15",
            "io.kubernetes.cri-o.SandboxID": "\(podID)"
          },
          "hooks": {"createRuntime": [{"path": "/usr/libexec/oci/hooks.d/oci-systemd-hook", "args": ["oci-systemd-hook", "createRuntime"]}]},
          "linux": {
            "sysctl": {"net.ipv4.ping_group_range": "0 0"},
            "resources": {
              "devices": [{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rwm"}],
              "memory": {"limit": 268435456, "swap": 536870912},
              "cpu": {"shares": 512, "quota": 50000, "period": 100000},
              "pids": {"limit": 2048}
            },
            "cgroupsPath": "machine-libpod_pod_\(podID).slice:libpod:\(containerID)",
            "namespaces": [
              {"type": "pid"},
              {"type": "network", "path": "/run/netns/netns-5e4d3c2b-1a09-8f7e-6d5c-4b3a29180716"},
              {"type": "ipc", "path": "/proc/4242/ns/ipc"},
              {"type": "uts", "path": "/proc/4242/ns/uts"},
              {"type": "mount"},
              {"type": "cgroup"}
            ],
            "seccomp": {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38, "architectures": ["SCMP_ARCH_X86_64"],
                        "syscalls": [{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"}]},
            "devices": [
              {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 438, "uid": 0, "gid": 0},
              {"path": "/dev/null", "type": "c", "major": 1, "minor": 3, "fileMode": 438, "uid": 0, "gid": 0}
            ],
            "maskedPaths": ["/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
                            "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/fs/selinux", "/sys/dev/block"],
            "readonlyPaths": ["/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
          }
        }
        """
    }

    /// The host side podman prepares: userdata files, a /dev/shm directory, a small secrets tree
    /// (a file, a subdirectory with a file, a link).
    static func makeHostFiles(in directory: String) -> (userdata: String, secrets: String) {
        let userdata = directory + "/userdata"
        let secrets = directory + "/secrets"
        SpecTestFiles.makeDirectories(userdata + "/shm")
        SpecTestFiles.write(userdata + "/resolv.conf", "nameserver 10.88.0.1\nsearch dns.podman\n")
        SpecTestFiles.write(userdata + "/hosts", "127.0.0.1 localhost\n10.88.0.5 web pod\n")
        SpecTestFiles.write(userdata + "/hostname", "web\n")
        SpecTestFiles.write(userdata + "/.containerenv", "engine=\"podman-5.2.0\"\nname=\"web\"\nrootless=0\n", mode: 0o600)
        SpecTestFiles.makeDirectories(secrets + "/rhsm")
        SpecTestFiles.write(secrets + "/token", "s3cr3t", mode: 0o400)
        SpecTestFiles.write(secrets + "/rhsm/rhsm.conf", "[rhsm]\n")
        symlink("token", secrets + "/current")
        return (userdata, secrets)
    }
}
