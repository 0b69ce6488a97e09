#if canImport(Glibc)
import Glibc
#endif
import AgentClient
import Harness
import OCI
import Runtime
import Sys
import Testing

/// `AgentSpec.copy` against the built kvmrun-agent serving a Unix socket on this host: its
/// CopyFile writes below /run/kata-containers/shared/containers here as in the guest, so what
/// arrives can be read back.
@Suite("Agent spec: copies through the agent binary", .serialized,
       .enabled(if: getuid() == 0 && access(SpecTestFiles.agentBinary, X_OK) == 0))
struct AgentSpecCopyTests {
    static var binary: String { SpecTestFiles.agentBinary }

    static func connect(_ socket: String) throws -> AgentClient {
        var last: any Error = SystemError(call: "connect \(socket)", errno: ENOENT)
        for _ in 0..<100 {
            do {
                return try AgentClient(connection: try StreamSocket.connectUnix(socket))
            } catch {
                last = error
                usleep(50_000)
            }
        }
        throw last
    }

    static func linkTarget(_ path: String) -> String? {
        var buffer = [CChar](repeating: 0, count: 4097)
        let count = readlink(path, &buffer, 4096)
        guard count >= 0 else { return nil }
        return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    @Test func filesDirectoriesAndLinksArrive() throws {
        let directory = SpecTestFiles.directory("spec-copy")
        let id = "kvmrun-test-\(getpid())-copy"
        let shared = AgentSpec.sharedGuestDir(containerID: id)
        defer {
            SpecTestFiles.remove(shared)
            SpecTestFiles.remove(directory)
            // The agent made the share root on this host: remove it again if nothing else is in it.
            for path in [AgentSpec.guestShareRoot, "/run/kata-containers/shared", "/run/kata-containers"] { rmdir(path) }
        }
        // The host side: a file, and a tree with a file over one chunk, an empty file, a
        // subdirectory and an empty one with their own modes, a link.
        SpecTestFiles.write(directory + "/hosts", "127.0.0.1 localhost\n")
        let tree = directory + "/tree"
        SpecTestFiles.makeDirectories(tree + "/sub")
        SpecTestFiles.makeDirectories(tree + "/emptydir")
        let big = (0..<(5 << 19)).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 13) }   // 2.5 MiB: three chunks
        SpecTestFiles.write(tree + "/big.bin", big, mode: 0o640)
        SpecTestFiles.write(tree + "/empty", [], mode: 0o600)
        SpecTestFiles.write(tree + "/sub/note.txt", "note\n")
        chmod(tree + "/sub", 0o750)
        chmod(tree + "/emptydir", 0o700)
        symlink("big.bin", tree + "/link")

        let spec = Spec(process: Spec.Process(args: ["true"]), root: Spec.Root(path: "rootfs"), mounts: [
            Spec.Mount(destination: "/etc/hosts", type: "bind", source: directory + "/hosts", options: ["bind"]),
            Spec.Mount(destination: "/data", source: tree, options: ["rbind", "ro"]),
        ])
        let plan = try AgentSpec.plan(spec, containerID: id, rootfsGuestPath: "/run/kvmrun/rootfs", sharedGuestDir: shared)
        #expect(plan.copies.count == 8)

        let socket = directory + "/agent.sock"
        let agent = try ChildProcess(executable: "/bin/sh", arguments: [
            "-c", "exec \(Self.binary) --unix \(socket) --cgroup-root none --exit-with-parent 2>>\(directory)/agent.log",
        ])
        defer {
            agent.signal(SIGKILL)
            _ = agent.waitForExit(timeoutMilliseconds: 5000)
        }
        let client = try Self.connect(socket)
        defer { client.close() }
        try AgentSpec.copy(plan.copies, client: client)

        #expect(SpecTestFiles.text(shared + "/0-hosts") == "127.0.0.1 localhost\n")
        #expect(SpecTestFiles.mode(shared + "/0-hosts") == 0o100644)
        let guestTree = shared + "/1-tree"
        #expect(plan.spec.mounts.map(\.source) == [shared + "/0-hosts", guestTree])
        #expect(SpecTestFiles.read(guestTree + "/big.bin") == big)
        #expect(SpecTestFiles.mode(guestTree + "/big.bin") == 0o100640)
        #expect(SpecTestFiles.read(guestTree + "/empty") == [] && SpecTestFiles.mode(guestTree + "/empty") == 0o100600)
        #expect(SpecTestFiles.text(guestTree + "/sub/note.txt") == "note\n")
        #expect(SpecTestFiles.mode(guestTree + "/sub") == 0o040750)
        #expect(SpecTestFiles.mode(guestTree + "/emptydir") == 0o040700)
        #expect(SpecTestFiles.mode(guestTree)! & 0o170000 == 0o040000)
        #expect(Self.linkTarget(guestTree + "/link") == "big.bin")
        #expect(SpecTestFiles.mode(guestTree + "/big.bin.tmp") == nil, "no temporary file left")

        // A host file gone since the plan: the step names it.
        SpecTestFiles.write(directory + "/gone", "x")
        let gone = [GuestFileCopy(hostPath: directory + "/gone", guestPath: shared + "/gone")]
        unlink(directory + "/gone")
        #expect {
            try AgentSpec.copy(gone, client: client)
        } throws: { error in
            "\(error)".hasPrefix("copy \(directory)/gone to the guest's \(shared)/gone: lstat \(directory)/gone") && "\(error)".contains("ENOENT")
        }
        // A guest path the agent refuses: its answer comes back, with the step.
        let outside = [GuestFileCopy(hostPath: directory + "/hosts", guestPath: "/etc/kvmrun-test-\(getpid())")]
        #expect {
            try AgentSpec.copy(outside, client: client)
        } throws: { error in
            "\(error)".hasPrefix("copy \(directory)/hosts to the guest's /etc/kvmrun-test-") && "\(error)".contains("INVALID_ARGUMENT")
        }
    }
}
