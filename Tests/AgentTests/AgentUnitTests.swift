#if canImport(Glibc)
import Glibc
#endif
import Agent
import CAgent
import OCI
import Testing

/// Pure parts of the agent: mount options, users and groups, cgroup files for OCI resources,
/// spec to spawn request, wait statuses, /proc/net/dev.
@Suite("Agent logic")
struct AgentUnitTests {
    @Test func mountOptions() {
        let options = MountOptions(["nosuid", "nodev", "ro", "mode=755", "size=64m", "rslave"])
        #expect(options.flags == KVMRUN_MS_NOSUID | KVMRUN_MS_NODEV | KVMRUN_MS_RDONLY)
        #expect(options.propagation == KVMRUN_MS_SLAVE | KVMRUN_MS_REC)
        #expect(options.dataString == "mode=755,size=64m")
        #expect(MountOptions(["rbind", "rw"]).flags == KVMRUN_MS_BIND | KVMRUN_MS_REC)
        #expect(MountOptions(["ro", "rw"]).flags == 0)
        #expect(MountOptions([]).dataString == nil)
    }

    static let passwd = Users.parsePasswd("""
        root:x:0:0:root:/root:/bin/sh
        # comment:x:1:1::/:/bin/sh
        broken line
        app:x:1000:1000:app:/home/app:/bin/sh
        nobody:x:65534:65534:nobody:/nonexistent:/bin/false
        """)
    static let groups = Users.parseGroup("""
        root:x:0:
        app:x:1000:
        extra:x:2000:app,other
        video:x:44:other
        """)

    @Test func usersFromTheContainersFiles() throws {
        #expect(Self.passwd.map(\.name) == ["root", "app", "nobody"])
        let app = try Users.resolve(user: "app", group: nil, additional: [], passwd: Self.passwd, groups: Self.groups)
        #expect(app == Users.Resolved(uid: 1000, gid: 1000, groups: [2000], home: "/home/app"))
        let numeric = try Users.resolve(user: "1000", group: "video", additional: ["root"], passwd: Self.passwd, groups: Self.groups)
        #expect(numeric == Users.Resolved(uid: 1000, gid: 44, groups: [0, 2000], home: "/home/app"))
        let unknownNumber = try Users.resolve(user: "4242", group: "4243", additional: [], passwd: Self.passwd, groups: Self.groups)
        #expect(unknownNumber == Users.Resolved(uid: 4242, gid: 4243, groups: [], home: nil))
        #expect(throws: AgentError.invalid("user \"ghost\" is not in the container's /etc/passwd")) {
            _ = try Users.resolve(user: "ghost", group: nil, additional: [], passwd: Self.passwd, groups: Self.groups)
        }
        #expect(throws: AgentError.invalid("group \"ghosts\" is not in the container's /etc/group")) {
            _ = try Users.resolve(user: "app", group: "ghosts", additional: [], passwd: Self.passwd, groups: Self.groups)
        }
    }

    @Test func cgroupFilesForResources() {
        var resources = Spec.Resources(memory: .init(limit: 64 << 20, reservation: 32 << 20, swap: 96 << 20),
                                       cpu: .init(shares: 1024, quota: 50_000, period: 100_000, cpus: "0-1"), pids: .init(limit: 100))
        resources.unified = ["memory.high": "60M"]
        let files = Cgroup.files(for: resources).map { "\($0.file)=\($0.value)" }
        #expect(files == ["memory.max=67108864", "memory.low=33554432", "memory.swap.max=33554432", "cpu.weight=39",
                          "cpu.max=50000 100000", "cpuset.cpus=0-1", "pids.max=100", "memory.high=60M"])
        let unlimited = Spec.Resources(memory: .init(limit: -1), cpu: .init(quota: -1, period: 100_000), pids: .init(limit: -1))
        #expect(Cgroup.files(for: unlimited).map { "\($0.file)=\($0.value)" } == ["memory.max=max", "cpu.max=max 100000", "pids.max=max"])
        #expect(Cgroup.files(for: Spec.Resources()).isEmpty)
    }

    @Test func specToSpawnRequest() throws {
        let root = AgentTest.makeRootfs("setup")
        var process = Spec.Process(terminal: true, consoleSize: Spec.Box(height: 30, width: 100), user: Spec.User(username: "app"),
                                   args: ["sh"], env: ["PATH=/bin"], cwd: "/home/app",
                                   capabilities: Spec.Capabilities(bounding: ["CAP_KILL", "NET_RAW"], effective: ["CAP_KILL"]),
                                   rlimits: [Spec.Rlimit(type: "RLIMIT_NOFILE", hard: 2048, soft: 1024)], noNewPrivileges: true, oomScoreAdj: 100)
        process.user.additionalGids = [5]
        let spec = Spec(process: process, root: Spec.Root(path: root, readonly: true), hostname: "h",
                        mounts: [Spec.Mount(destination: "/dev", type: "tmpfs", source: "tmpfs", options: ["nosuid", "mode=755"]),
                                 Spec.Mount(destination: "/data", type: "bind", source: "/srv", options: ["rbind", "ro"]),
                                 Spec.Mount(destination: "/sys/fs/cgroup", type: "cgroup", source: "cgroup")],
                        linux: Spec.Linux(sysctl: ["net.ipv4.ip_forward": "1"], namespaces: [.init(type: "pid"), .init(type: "uts"), .init(type: "network", path: "/var/run/netns/x")],
                                          devices: [Spec.Device(type: "c", path: "/dev/fuse", major: 10, minor: 229)],
                                          maskedPaths: ["/proc/kcore"], readonlyPaths: ["/proc/sys"]))
        try spec.validate()
        let request = try ContainerSetup.initRequest(spec, rootfs: root, stringUser: nil)
        #expect(request.cloneFlags == KVMRUN_CLONE_NEWNS | KVMRUN_CLONE_NEWPID | KVMRUN_CLONE_NEWUTS, "a network path keeps the sandbox's namespace")
        #expect(request.uid == 1000 && request.gid == 1000 && request.groups == [5, 2000])
        #expect(request.env == ["PATH=/bin", "HOME=/home/app"])
        #expect(request.capabilities?.bounding == (1 << 5) | (1 << 13))
        #expect(request.capabilities?.effective == 1 << 5)
        #expect(request.rlimits == [SpawnRequest.Rlimit(resource: 7, soft: 1024, hard: 2048)])
        #expect(request.oomScoreAdj == 100 && request.noNewPrivileges && request.rootfsReadonly)
        #expect(request.defaultDevices)
        #expect(request.mounts[1] == SpawnRequest.Mount(source: "/srv", target: "/data", fstype: nil, data: nil,
                                                        flags: KVMRUN_MS_BIND | KVMRUN_MS_REC | KVMRUN_MS_RDONLY))
        #expect(request.mounts[2].fstype == "cgroup2")
        #expect(request.devices == [SpawnRequest.Device(path: "/dev/fuse", mode: 0o020666, major: 10, minor: 229, uid: 0, gid: 0)])
        #expect(request.sysctls.map(\.path) == ["/proc/sys/net/ipv4/ip_forward"])
        #expect(request.waitForStart)
        if case .terminal(let rows, let columns) = request.stdio {
            #expect(rows == 30 && columns == 100)
        } else {
            Issue.record("a terminal process gets a pty")
        }
        // Kata's string user wins over the spec's numbers.
        let kata = try ContainerSetup.process(process, stringUser: StringUser(uid: "0", gid: "2000"), root: root)
        #expect(kata.uid == 0 && kata.gid == 2000)
    }

    @Test func waitStatuses() {
        #expect(WaitStatus.exited(3).code == 3)
        #expect(WaitStatus.killed(SIGKILL).code == 137)
        #expect(WaitStatus(raw: 0x8b).signal == 11)   // SIGSEGV with a core dump
        #expect(WaitStatus.exited(0).description == "exit code 0")
    }

    @Test func procNetDev() {
        let text = """
        Inter-|   Receive                                                |  Transmit
         face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
            lo:     140       2    0    0    0     0          0         0      140       2    0    0    0     0       0          0
          eth0: 1000 10 1 2 0 0 0 0 2000 20 3 4 0 0 0 0
        garbage
        """
        let stats = NetworkDeviceStats.parse(text)
        #expect(stats.map(\.name) == ["lo", "eth0"])
        #expect(stats[1].receiveBytes == 1000 && stats[1].transmitPackets == 20 && stats[1].transmitDropped == 4)
    }

    @Test func copyFileStaysInTheSharedDirectory() throws {
        let root = AgentTest.temporaryDirectory("copyfile") + "/shared"
        for path in ["/etc/passwd", "\(root)/../escape", "\(root)", "relative/x", "\(root)/./x"] {
            #expect(throws: AgentError.self) {
                try CopyFile.copy(CopyFileRequest(path: path, fileSize: 1, fileMode: 0o100644, dirMode: 0o755, uid: 0, gid: 0, offset: 0, data: [1]), root: root)
            }
        }
        // Two chunks, renamed into place only when complete.
        let target = "\(root)/a/b/file"
        try CopyFile.copy(CopyFileRequest(path: target, fileSize: 6, fileMode: 0o100640, dirMode: 0o750, uid: 0, gid: 0, offset: 0, data: Array("hel".utf8)), root: root)
        #expect(!Files.exists(target))
        try CopyFile.copy(CopyFileRequest(path: target, fileSize: 6, fileMode: 0o100640, dirMode: 0o750, uid: 0, gid: 0, offset: 3, data: Array("lo\n".utf8)), root: root)
        #expect(Files.readText(target) == "hello\n")
        var info = stat()
        #expect(stat(target, &info) == 0 && info.st_mode & 0o777 == 0o640)
        try CopyFile.copy(CopyFileRequest(path: "\(root)/link", fileSize: 0, fileMode: 0o120777, dirMode: 0o755, uid: 0, gid: 0, offset: 0, data: Array("a/b/file".utf8)), root: root)
        #expect(Files.readText("\(root)/link") == "hello\n")
    }
}
