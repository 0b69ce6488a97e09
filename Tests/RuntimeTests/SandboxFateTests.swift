#if canImport(Glibc)
import Glibc
#endif
@testable import Runtime
import Testing

/// A lost agent connection is reported with what became of the VMM: alive or gone, and the end
/// of its log and console, so that "connection closed" names its cause.
@Suite("Sandbox VMM fate")
struct SandboxFateTests {
    static func record(directory: String, vmm: ProcessIdentity?) -> SandboxRecord {
        SandboxRecord(
            id: "s1", state: .running, createdAt: "2026-12-04T00:00:00Z", vmm: vmm,
            apiSocket: directory + "/api.sock", vsockSocket: directory + "/vsock.sock",
            consoleLog: directory + "/console.log", vcpus: 1, baseMemoryMiB: 256, hotplugRegionMiB: 2048,
            hotpluggedMiB: 0, blockSlots: [], network: nil, containers: [])
    }

    static func write(_ path: String, _ text: String) throws {
        try AtomicFile.write(Array(text.utf8), to: path)
    }

    @Test("A VMM that exited is said to have exited, with its log's and console's last lines")
    func exited() throws {
        let directory = "/var/tmp/kvmrun-fate-test-\(getpid())"
        _ = system("rm -rf \(directory) && mkdir -p \(directory)")
        defer { _ = system("rm -rf \(directory)") }
        try Self.write(directory + "/vmm.log", "kvmrun: guest triple fault (vCPU 0)\n")
        try Self.write(directory + "/console.log", "Kernel panic - not syncing: Attempted to kill init!\n")
        // A child that has exited and been reaped: its identity no longer matches a live process.
        // It waits for the pipe's end of file, so that it is still running (not a zombie, which
        // has no identity) when its identity is taken.
        var gate: [Int32] = [0, 0]
        try #require(pipe(&gate) == 0)
        let child = fork()
        if child == 0 {
            close(gate[1])
            var byte: UInt8 = 0
            _ = read(gate[0], &byte, 1)
            _exit(0)
        }
        close(gate[0])
        let taken = ProcessIdentity.of(child)
        close(gate[1])
        var status: Int32 = 0
        _ = waitpid(child, &status, 0)
        let identity = try #require(taken)
        let fate = SandboxVM.fate(of: Self.record(directory: directory, vmm: identity))
        #expect(fate.contains("the VMM (pid \(child)) has exited"), "\(fate)")
        #expect(fate.contains("guest triple fault") && fate.contains("Attempted to kill init"), "\(fate)")
    }

    @Test("A VMM that still runs is said to run; missing logs read as empty")
    func running() throws {
        let directory = "/var/tmp/kvmrun-fate-test-\(getpid())-running"
        let fate = SandboxVM.fate(of: Self.record(directory: directory, vmm: ProcessIdentity.of(getpid())))
        #expect(fate.contains("the VMM (pid \(getpid())) still runs"), "\(fate)")
        #expect(fate.contains("vmm: (empty)") && fate.contains("console: (empty)"), "\(fate)")
        #expect(SandboxVM.fate(of: Self.record(directory: directory, vmm: nil)) == "the sandbox has no VMM on record")
    }
}
