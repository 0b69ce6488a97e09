#if canImport(Glibc)
import Glibc
#endif
import AgentProtocol
import OCI
import Runtime
import Testing

/// Bind mounts without a shared file system: what is copied, what is refused, and why.
@Suite("Agent spec: mounts and input checks")
struct AgentSpecMountTests {
    static func spec(_ mounts: [Spec.Mount]) -> Spec {
        Spec(process: Spec.Process(args: ["true"]), root: Spec.Root(path: "rootfs"), mounts: mounts)
    }

    static func plan(_ spec: Spec, id: String = "m1") throws(RuntimeError) -> GuestContainerPlan {
        try AgentSpec.plan(spec, containerID: id, rootfsGuestPath: "/run/kvmrun/rootfs/\(id)", sharedGuestDir: AgentSpec.sharedGuestDir(containerID: id))
    }

    @Test func missingSourceNamesTheMount() {
        let mount = Spec.Mount(destination: "/etc/app.conf", type: "bind", source: "/nonexistent/kvmrun/app.conf", options: ["rbind"])
        #expect(throws: RuntimeError.invalidInput("mount /etc/app.conf: source /nonexistent/kvmrun/app.conf does not exist on the host")) {
            try Self.plan(Self.spec([mount]))
        }
        let relative = Spec.Mount(destination: "/data", source: "data", options: ["bind"])
        #expect(throws: RuntimeError.invalidInput("mount /data: a bind mount needs an absolute host source path, not \"data\"")) {
            try Self.plan(Self.spec([relative]))
        }
    }

    @Test func directoryCopyLimits() throws {
        let directory = SpecTestFiles.directory("spec-limits")
        defer { SpecTestFiles.remove(directory) }
        // 300 small files: over the count.
        SpecTestFiles.makeDirectories(directory + "/many")
        for index in 0..<300 { SpecTestFiles.write("\(directory)/many/f\(index)", "x") }
        #expect(throws: RuntimeError.invalidInput("mount /data: a host directory of 301 files cannot be shared with the microVM (no shared filesystem); kvmrun copies at most 256 files")) {
            try Self.plan(Self.spec([Spec.Mount(destination: "/data", source: directory + "/many", options: ["rbind"])]))
        }
        // 9.5 MiB in three files: over the size.
        SpecTestFiles.makeDirectories(directory + "/big/sub")
        let chunk = [UInt8](repeating: 7, count: 4 << 20)
        SpecTestFiles.write(directory + "/big/a", chunk)
        SpecTestFiles.write(directory + "/big/sub/b", chunk)
        SpecTestFiles.write(directory + "/big/c", [UInt8](repeating: 1, count: 3 << 19))
        #expect(throws: RuntimeError.invalidInput("mount /data: a host directory of 9.5 MiB cannot be shared with the microVM (no shared filesystem); kvmrun copies at most 8 MiB")) {
            try Self.plan(Self.spec([Spec.Mount(destination: "/data", type: "bind", source: directory + "/big")]))
        }
        // One file over the size.
        SpecTestFiles.write(directory + "/huge", [UInt8](repeating: 0, count: (8 << 20) + 1))
        #expect(throws: RuntimeError.invalidInput("mount /huge: a host file of 8.1 MiB cannot be shared with the microVM (no shared filesystem); kvmrun copies at most 8 MiB")) {
            try Self.plan(Self.spec([Spec.Mount(destination: "/huge", type: "bind", source: directory + "/huge")]))
        }
        // A large tree is not walked to its end.
        SpecTestFiles.makeDirectories(directory + "/deep")
        for index in 0..<5000 { SpecTestFiles.write("\(directory)/deep/f\(index)", "") }
        #expect(throws: RuntimeError.invalidInput("mount /deep: a host directory of more than 4096 files cannot be shared with the microVM (no shared filesystem); kvmrun copies at most 256 files")) {
            try Self.plan(Self.spec([Spec.Mount(destination: "/deep", source: directory + "/deep", options: ["bind"])]))
        }
        // Exactly at the limits: copied (256 entries: 255 files and the directory).
        SpecTestFiles.makeDirectories(directory + "/fits")
        for index in 0..<255 { SpecTestFiles.write("\(directory)/fits/f\(index)", "y") }
        let plan = try Self.plan(Self.spec([Spec.Mount(destination: "/fits", source: directory + "/fits", options: ["bind"])]))
        #expect(plan.copies.count == 256 && plan.copies.last?.guestPath == AgentSpec.sharedGuestDir(containerID: "m1") + "/0-fits")
        #expect(plan.spec.mounts[0].source == AgentSpec.sharedGuestDir(containerID: "m1") + "/0-fits" && plan.spec.mounts[0].options == ["bind"])
    }

    @Test func specialSources() throws {
        let directory = SpecTestFiles.directory("spec-special")
        defer { SpecTestFiles.remove(directory) }
        mkfifo(directory + "/fifo", 0o600)
        #expect(throws: RuntimeError.invalidInput("mount /run/fifo: source \(directory)/fifo is a FIFO, which cannot be shared with the microVM (no shared filesystem)")) {
            try Self.plan(Self.spec([Spec.Mount(destination: "/run/fifo", type: "bind", source: directory + "/fifo")]))
        }
        // A host device bound in (rootless podman's --device): dropped, the guest has its own /dev.
        // A link to a file is followed, and the copy keeps the name the spec gives.
        SpecTestFiles.write(directory + "/stub-resolv.conf", "nameserver 127.0.0.53\n")
        symlink(directory + "/stub-resolv.conf", directory + "/resolv.conf")
        let plan = try Self.plan(Self.spec([
            Spec.Mount(destination: "/dev/kmsg", type: "bind", source: "/dev/null", options: ["rbind"]),
            Spec.Mount(destination: "/etc/resolv.conf", type: "bind", source: directory + "/resolv.conf"),
            Spec.Mount(destination: "/dev/shm/", type: "bind", source: "/dev/shm", options: ["bind", "size=256m", "mode=1770"]),
        ]))
        #expect(plan.spec.mounts.map(\.destination) == ["/etc/resolv.conf", "/dev/shm/"])
        #expect(plan.copies == [GuestFileCopy(hostPath: realPath(directory) + "/stub-resolv.conf", guestPath: AgentSpec.sharedGuestDir(containerID: "m1") + "/1-resolv.conf")])
        #expect(plan.spec.mounts[0].options == ["rbind"] && plan.spec.mounts[0].type == "bind")
        #expect(plan.spec.mounts[1].type == "tmpfs" && plan.spec.mounts[1].options == ["size=256m", "mode=1770"])
        #expect(plan.warnings.first == "mount /dev/kmsg: host device /dev/null not bound (a host device the microVM does not have)")
        #expect(plan.warnings.count == 3)
    }

    @Test func refusedInputsNameTheField() {
        #expect(throws: RuntimeError.invalidInput("mount /mnt: type \"nfs\" cannot be mounted in the microVM (kvmrun passes cgroup, cgroup2, devpts, mqueue, proc, sysfs, tmpfs and copies bind mounts)")) {
            try Self.plan(Self.spec([Spec.Mount(destination: "/mnt", type: "nfs", source: "server:/export")]))
        }
        #expect(throws: RuntimeError.invalidInput("config.json: process.args: must name a program (non-empty)")) {
            try Self.plan(Spec(process: Spec.Process(args: []), root: Spec.Root(path: "rootfs")))
        }
        #expect(throws: RuntimeError.invalidInput("config.json: mounts[0].destination: must be an absolute path, not \"tmp\"")) {
            try Self.plan(Self.spec([Spec.Mount(destination: "tmp", type: "tmpfs", source: "tmpfs")]))
        }
        #expect(throws: RuntimeError.invalidInput("config.json: root.path: required field missing")) {
            try Self.plan(Spec(process: Spec.Process(args: ["true"])))
        }
        var limits = Self.spec([])
        limits.linux = Spec.Linux(resources: Spec.Resources(memory: Spec.Resources.Memory(limit: 100)))
        #expect(throws: RuntimeError.invalidInput("config.json: linux.resources.memory.limit: must be -1 (unlimited) or at least 4096 bytes, not 100")) {
            try Self.plan(limits)
        }
        #expect(throws: RuntimeError.invalidInput("container id \"a/b\": must be 1 to 128 letters, digits, '-', '_' or '.'")) {
            try AgentSpec.plan(Self.spec([]), containerID: "a/b", rootfsGuestPath: "/r", sharedGuestDir: AgentSpec.sharedGuestDir(containerID: "a"))
        }
        #expect(throws: RuntimeError.invalidInput("shared guest directory /run/kvmrun/shared/c1: must be below /run/kata-containers/shared/containers (the only place the agent's CopyFile writes)")) {
            try AgentSpec.plan(Self.spec([]), containerID: "c1", rootfsGuestPath: "/r", sharedGuestDir: "/run/kvmrun/shared/c1")
        }
        #expect(throws: RuntimeError.invalidInput("rootfs guest path \"/run/../rootfs\": must be a canonical absolute path")) {
            try AgentSpec.plan(Self.spec([]), containerID: "c1", rootfsGuestPath: "/run/../rootfs", sharedGuestDir: AgentSpec.sharedGuestDir(containerID: "c1"))
        }
        #expect(throws: RuntimeError.invalidInput("config.json: process.user.uid: invalid value (must be an integer in 0...4294967295, not -1)")) {
            try AgentSpec.load(configJSON: Array(#"{"ociVersion": "1.1.0", "process": {"user": {"uid": -1, "gid": 0}, "cwd": "/"}}"#.utf8))
        }
    }
}
