import Agent
import AgentProtocol
import OCI
import Runtime
import Testing

/// The plan's grpc.Spec read back by the agent's own conversion and set-up code: what the
/// guest will actually do with it.
@Suite("Agent spec: through the agent's conversion")
struct AgentSpecRoundTripTests {
    @Test func podmanSpecAsTheAgentSeesIt() throws {
        let directory = SpecTestFiles.directory("spec-roundtrip")
        defer { SpecTestFiles.remove(directory) }
        let (userdata, secrets) = PodmanFixture.makeHostFiles(in: directory)
        let id = PodmanFixture.containerID
        let shared = AgentSpec.sharedGuestDir(containerID: id)
        let plan = try AgentSpec.plan(try AgentSpec.load(configJSON: Array(PodmanFixture.config(userdata: userdata, secrets: secrets).utf8)),
                                      containerID: id, rootfsGuestPath: "/run/kvmrun/rootfs", sharedGuestDir: shared)
        let spec = Spec(plan.spec)
        try spec.validate()   // as the agent's CreateContainer does

        // No new network namespace (the sandbox's is shared); new pid, ipc, uts, mount, cgroup ones.
        let wanted = Spec(linux: Spec.Linux(namespaces: ["pid", "ipc", "uts", "mount", "cgroup"].map { Spec.Namespace(type: $0) }))
        let withNetwork = Spec(linux: Spec.Linux(namespaces: ["pid", "ipc", "uts", "mount", "cgroup", "network"].map { Spec.Namespace(type: $0) }))
        #expect(ContainerSetup.cloneFlags(spec) == ContainerSetup.cloneFlags(wanted))
        #expect(ContainerSetup.cloneFlags(spec) != ContainerSetup.cloneFlags(withNetwork))

        let (mounts, devTmpfs) = ContainerSetup.mounts(spec)
        #expect(devTmpfs, "the /dev tmpfs gets the default device nodes")
        let shm = try #require(mounts.first { $0.target == "/dev/shm" })
        #expect(shm.fstype == "tmpfs" && shm.data == "mode=1777,size=64m")
        let resolv = try #require(mounts.first { $0.target == "/etc/resolv.conf" })
        #expect(resolv.source == "\(shared)/5-resolv.conf" && resolv.fstype == nil && MountOptions(["bind"]).flags & resolv.flags != 0)
        let secretsMount = try #require(mounts.first { $0.target == "/run/secrets" })
        #expect(secretsMount.source == "\(shared)/10-secrets" && secretsMount.fstype == nil)
        let cgroupMount = try #require(mounts.first { $0.target == "/sys/fs/cgroup" })
        #expect(cgroupMount.fstype == "cgroup2")

        let request = try ContainerSetup.initRequest(spec, rootfs: "/run/kvmrun/rootfs", stringUser: nil)
        #expect(request.rootfs == "/run/kvmrun/rootfs" && request.args == ["/bin/sh", "-c", "echo hi"])
        #expect(request.devices.map(\.path) == ["/dev/null"])
        #expect(request.hostname == "web" && request.sysctls.map(\.path) == ["/proc/sys/net/ipv4/ping_group_range"])
        #expect(request.maskedPaths.count == 11 && request.readonlyPaths.count == 6)

        // The guest's cgroup and the limits written there.
        #expect(spec.linux?.cgroupsPath == "/kvmrun/\(id)")
        let files = Cgroup.files(for: try #require(spec.linux?.resources))
        let values = Dictionary(files.map { ($0.file, $0.value) }, uniquingKeysWith: { first, _ in first })
        #expect(values["memory.max"] == "268435456" && values["memory.swap.max"] == "268435456")
        #expect(values["cpu.max"] == "50000 100000" && values["cpu.weight"] == "20" && values["pids.max"] == "2048")

        // The exec conversion reads back to the same process.
        let original = try AgentSpec.load(configJSON: Array(PodmanFixture.config(userdata: userdata, secrets: secrets).utf8)).process!
        let back = Spec.Process(AgentSpec.process(original))
        #expect(back.args == original.args && back.env == original.env && back.cwd == original.cwd)
        #expect(back.user.uid == original.user.uid && back.user.gid == original.user.gid && back.user.additionalGids == original.user.additionalGids)
        #expect(back.capabilities?.bounding == original.capabilities?.bounding && back.capabilities?.permitted == original.capabilities?.permitted)
        #expect(back.rlimits == original.rlimits && back.terminal == false)
    }
}
