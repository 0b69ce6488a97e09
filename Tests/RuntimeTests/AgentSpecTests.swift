#if canImport(Glibc)
import Glibc
#endif
import AgentProtocol
import OCI
import OCIJSON
import Runtime
import Testing

@Suite("Agent spec: config.json → grpc.Spec for the guest")
struct AgentSpecTests {
    static let rootfs = "/run/kvmrun/storage/ctr/rootfs"

    /// A podman pod member's config.json: every field the agent uses, the copies, the warnings.
    @Test func podmanPodMember() throws {
        let directory = SpecTestFiles.directory("spec-podman")
        defer { SpecTestFiles.remove(directory) }
        let (userdata, secrets) = PodmanFixture.makeHostFiles(in: directory)
        let spec = try AgentSpec.load(configJSON: Array(PodmanFixture.config(userdata: userdata, secrets: secrets).utf8))
        let id = PodmanFixture.containerID
        let shared = AgentSpec.sharedGuestDir(containerID: id)
        #expect(shared == "/run/kata-containers/shared/containers/\(id)")
        let plan = try AgentSpec.plan(spec, containerID: id, rootfsGuestPath: Self.rootfs, sharedGuestDir: shared)
        let proto = plan.spec

        #expect(proto.version == "1.2.0")
        #expect(proto.root.path == Self.rootfs && !proto.root.readonly)
        #expect(proto.hostname == "web")
        #expect(!proto.hasHooks, "hooks run on the host")
        #expect(proto.annotations == spec.annotations)

        // Process, as given (the AppArmor profile is not sent).
        let process = proto.process
        #expect(process.args == ["/bin/sh", "-c", "echo hi"])
        #expect(process.env.contains("container=podman") && process.cwd == "/")
        #expect(process.user.uid == 0 && process.user.gid == 0 && process.user.additionalGids == [0])
        #expect(process.capabilities.bounding.count == 11 && process.capabilities.effective == process.capabilities.bounding)
        #expect(process.capabilities.inheritable.isEmpty && process.capabilities.ambient.isEmpty)
        #expect(process.rlimits.map { "\($0.type)=\($0.soft)/\($0.hard)" } == ["RLIMIT_NOFILE=1048576/1048576", "RLIMIT_NPROC=4194304/4194304"])
        #expect(process.apparmorProfile.isEmpty && !process.terminal)

        // Mounts: kernel file systems as they are, /dev/shm a tmpfs, bind sources the copies.
        let mounts = proto.mounts
        #expect(mounts.map(\.destination) == ["/proc", "/dev", "/sys", "/dev/pts", "/dev/mqueue", "/etc/resolv.conf", "/etc/hosts",
                                              "/dev/shm", "/etc/hostname", "/run/.containerenv", "/run/secrets", "/sys/fs/cgroup"])
        #expect(mounts[1].type == "tmpfs" && mounts[1].source == "tmpfs" && mounts[1].options == ["nosuid", "strictatime", "mode=755", "size=65536k"])
        #expect(mounts[3].options == ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"])
        #expect(mounts[11].type == "cgroup" && mounts[11].options.contains("ro"))
        #expect(mounts[7].type == "tmpfs" && mounts[7].source == "shm" && mounts[7].options == ["nosuid", "noexec", "nodev", "mode=1777", "size=64m"])
        let binds: [(Int, String)] = [(5, "5-resolv.conf"), (6, "6-hosts"), (8, "8-hostname"), (9, "9-.containerenv"), (10, "10-secrets")]
        for (index, name) in binds {
            #expect(mounts[index].type == "bind" && mounts[index].source == "\(shared)/\(name)", "mount \(mounts[index].destination)")
            #expect(mounts[index].options.starts(with: ["bind", "rprivate"]))
        }
        #expect(mounts[10].options == ["bind", "rprivate", "ro"])

        // The copies: the four files, then the secrets tree children first (sorted names).
        let real = realPath(directory)
        let expected: [(String, String)] = [
            ("userdata/resolv.conf", "5-resolv.conf"), ("userdata/hosts", "6-hosts"), ("userdata/hostname", "8-hostname"),
            ("userdata/.containerenv", "9-.containerenv"),
            ("secrets/current", "10-secrets/current"), ("secrets/rhsm/rhsm.conf", "10-secrets/rhsm/rhsm.conf"),
            ("secrets/rhsm", "10-secrets/rhsm"), ("secrets/token", "10-secrets/token"), ("secrets", "10-secrets"),
        ]
        #expect(plan.copies == expected.map { GuestFileCopy(hostPath: "\(real)/\($0.0)", guestPath: "\(shared)/\($0.1)") })

        // Linux: the guest's cgroup, namespaces without paths and without network, the
        // standard device only, resources as they are.
        let linux = proto.linux
        #expect(linux.cgroupsPath == "/kvmrun/\(id)")
        #expect(linux.namespaces.map(\.type) == ["pid", "ipc", "uts", "mount", "cgroup"])
        #expect(linux.namespaces.allSatisfy { $0.path.isEmpty })
        #expect(linux.devices.map(\.path) == ["/dev/null"] && linux.devices[0].major == 1 && linux.devices[0].minor == 3 && linux.devices[0].fileMode == 0o666)
        #expect(linux.sysctl == ["net.ipv4.ping_group_range": "0 0"])
        #expect(linux.maskedPaths.count == 11 && linux.maskedPaths.first == "/proc/acpi")
        #expect(linux.readonlyPaths == ["/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"])
        #expect(linux.resources.memory.limit == 268_435_456 && linux.resources.memory.swap == 536_870_912)
        #expect(linux.resources.cpu.shares == 512 && linux.resources.cpu.quota == 50_000 && linux.resources.cpu.period == 100_000)
        #expect(linux.resources.pids.limit == 2048)
        #expect(linux.uidMappings.isEmpty && !linux.hasSeccomp)

        // One line per thing dropped or changed.
        let warnings = plan.warnings
        #expect(warnings.count == 8, "\(warnings)")
        #expect(warnings[0].contains("network namespace /run/netns/netns-5e4d3c2b") && warnings[0].contains("sandbox VM's network"))
        #expect(warnings[1].contains("ipc namespace path /proc/4242/ns/ipc dropped"))
        #expect(warnings[2].contains("uts namespace path /proc/4242/ns/uts dropped"))
        #expect(warnings[3].contains("process.apparmorProfile containers-default-0.57.4"))
        #expect(warnings[4].hasPrefix("mount /dev/shm:") && warnings[4].contains("tmpfs"))
        #expect(warnings[5].hasPrefix("mount /run/secrets: host directory \(secrets) copied") && warnings[5].contains("5 files"))
        #expect(warnings[6] == "mounts /etc/resolv.conf, /etc/hosts, /etc/hostname, /run/.containerenv: host files copied into the guest (snapshots: later changes on either side are not seen by the other)")
        #expect(warnings[7] == "linux.devices: /dev/fuse (c 10:229) dropped: a host device the microVM does not have")
    }

    @Test func minimalSpecGetsTheGuestCgroup() throws {
        let spec = Spec(process: Spec.Process(args: ["true"]), root: Spec.Root(path: "rootfs", readonly: true))
        let plan = try AgentSpec.plan(spec, containerID: "c1", rootfsGuestPath: Self.rootfs, sharedGuestDir: AgentSpec.sharedGuestDir(containerID: "c1"))
        #expect(plan.spec.root.path == Self.rootfs && plan.spec.root.readonly)
        #expect(plan.spec.linux.cgroupsPath == "/kvmrun/c1" && !plan.spec.linux.hasResources)
        #expect(plan.copies.isEmpty && plan.warnings.isEmpty && plan.spec.mounts.isEmpty)
    }

    /// A user namespace with mappings (podman --userns=auto): the agent has none, so it is
    /// dropped with the mappings (Spec.parse would refuse the spec; AgentSpec.load does not).
    @Test func userAndTimeNamespacesDropped() throws {
        let json = """
        {"ociVersion": "1.1.0", "process": {"user": {"uid": 0, "gid": 0}, "args": ["id"], "cwd": "/"}, "root": {"path": "rootfs"},
         "linux": {"namespaces": [{"type": "user"}, {"type": "mount"}, {"type": "time"}],
                   "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
                   "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
                   "cgroupsPath": "/machine.slice/libpod-abc.scope",
                   "resources": {"cpu": {"cpus": "2-3", "mems": "0"}, "unified": {"memory.high": "64M"}}}}
        """
        #expect(throws: SpecError.self) { try Spec.parse(json: Array(json.utf8)) }
        let spec = try AgentSpec.load(configJSON: Array(json.utf8))
        let plan = try AgentSpec.plan(spec, containerID: "u1", rootfsGuestPath: Self.rootfs, sharedGuestDir: AgentSpec.sharedGuestDir(containerID: "u1"))
        #expect(plan.spec.linux.namespaces.map(\.type) == ["mount"])
        #expect(plan.spec.linux.uidMappings.isEmpty && plan.spec.linux.gidMappings.isEmpty)
        #expect(plan.spec.linux.cgroupsPath == "/kvmrun/u1")
        #expect(plan.spec.linux.resources.cpu.cpus.isEmpty && plan.spec.linux.resources.cpu.mems.isEmpty)
        #expect(plan.warnings.count == 5, "\(plan.warnings)")
        #expect(plan.warnings.contains { $0.contains("time namespace dropped") })
        #expect(plan.warnings.contains { $0.contains("user namespace and its ID mappings dropped") })
        #expect(plan.warnings.contains { $0.hasPrefix("linux.resources.cpu.cpus 2-3: dropped") })
        #expect(plan.warnings.contains { $0.hasPrefix("linux.resources.cpu.mems 0: dropped") })
        #expect(plan.warnings.contains { $0.hasPrefix("linux.resources.unified memory.high: dropped") })
    }

    @Test func execProcess() {
        var process = Spec.Process(terminal: true, consoleSize: Spec.Box(height: 40, width: 120),
                                   user: Spec.User(uid: 1000, gid: 1000, additionalGids: [10, 20], username: "app"),
                                   args: ["/bin/sh", "-l"], env: ["TERM=xterm-256color"], cwd: "/home/app",
                                   capabilities: Spec.Capabilities(bounding: ["CAP_KILL"], effective: ["CAP_KILL"], permitted: ["CAP_KILL"], ambient: ["CAP_KILL"]),
                                   rlimits: [Spec.Rlimit(type: "RLIMIT_NOFILE", hard: 4096, soft: 1024)],
                                   noNewPrivileges: true, oomScoreAdj: -500)
        process.apparmorProfile = "unconfined"
        let proto = AgentSpec.process(process)
        #expect(proto.terminal && proto.consoleSize.height == 40 && proto.consoleSize.width == 120)
        #expect(proto.user.uid == 1000 && proto.user.gid == 1000 && proto.user.additionalGids == [10, 20] && proto.user.username == "app")
        #expect(proto.args == ["/bin/sh", "-l"] && proto.env == ["TERM=xterm-256color"] && proto.cwd == "/home/app")
        #expect(proto.capabilities.bounding == ["CAP_KILL"] && proto.capabilities.ambient == ["CAP_KILL"] && proto.capabilities.inheritable.isEmpty)
        #expect(proto.rlimits.count == 1 && proto.rlimits[0].type == "RLIMIT_NOFILE" && proto.rlimits[0].soft == 1024 && proto.rlimits[0].hard == 4096)
        #expect(proto.noNewPrivileges && proto.oomScoreAdj == -500 && proto.apparmorProfile.isEmpty)
        // A process without the optionals: proto3 zero values, no console size, no capabilities.
        let bare = AgentSpec.process(Spec.Process(args: ["true"]))
        #expect(!bare.terminal && !bare.hasConsoleSize && !bare.hasCapabilities && bare.cwd == "/" && bare.oomScoreAdj == 0)
    }
}

func realPath(_ path: String) -> String {
    guard let resolved = realpath(path, nil) else { return path }
    // SAFETY: realpath's malloc'd string, copied and freed.
    defer { free(resolved) }
    return String(cString: resolved)
}
