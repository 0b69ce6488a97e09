#if canImport(Glibc)
import Glibc
#endif
@testable import Runtime
import Testing

@Suite("Runtime state on disk")
struct StateStoreTests {
    static func temporaryRoot(_ name: String) -> String {
        let path = "/var/tmp/kvmrun-store-test-\(getpid())-\(name)"
        _ = system("rm -rf \(path)")
        return path
    }

    @Test("Container ids are claimed once, map to their sandbox, and are released")
    func claims() throws {
        let root = Self.temporaryRoot("claims")
        defer { _ = system("rm -rf \(root)") }
        let store = try StateStore(root: root)
        try store.claim(container: "c1", sandbox: "s1")
        #expect(try store.sandboxID(ofContainer: "c1") == "s1")
        #expect(throws: RuntimeError.exists("container c1")) { try store.claim(container: "c1", sandbox: "s2") }
        #expect(store.containerIDs() == ["c1"])
        store.release(container: "c1")
        #expect(throws: RuntimeError.notFound("container c1")) { try store.sandboxID(ofContainer: "c1") }
        #expect(throws: RuntimeError.self) { try store.claim(container: "../x", sandbox: "s1") }
        #expect(throws: RuntimeError.self) { try StateStore(root: "relative/root") }
    }

    @Test("A sandbox record round-trips through its atomically written file; no temporary file is left")
    func records() throws {
        let root = Self.temporaryRoot("records")
        defer { _ = system("rm -rf \(root)") }
        let store = try StateStore(root: root)
        try store.createSandboxDirectory("s1")
        #expect(throws: RuntimeError.exists("sandbox s1")) { try store.createSandboxDirectory("s1") }
        let record = SandboxRecord(
            id: "s1", state: .ready, createdAt: "2026-12-02T00:00:00Z", vmm: ProcessIdentity.of(getpid()),
            apiSocket: "a", vsockSocket: "v", consoleLog: "c", vcpus: 1, baseMemoryMiB: 256, hotplugRegionMiB: 2048,
            hotpluggedMiB: 0, blockSlots: [BlockSlot(index: 0, driveID: "slot0", guestDevice: "/dev/vda", containerID: "c1")],
            network: nil, containers: ["c1"])
        try store.save(record)
        let loaded = try store.loadSandbox("s1")
        #expect(loaded.state == .ready && loaded.blockSlots == record.blockSlots && loaded.containers == ["c1"])
        #expect(loaded.vmm?.isAlive == true, "this test process is alive with the same start time")
        let names = try #require(readDirectory(store.sandboxDirectory("s1")))
        #expect(names == ["sandbox.json"])
        #expect(throws: RuntimeError.notFound("sandbox s2")) { try store.loadSandbox("s2") }
        store.removeSandboxDirectory("s1")
        #expect(access(store.sandboxDirectory("s1"), F_OK) != 0)
    }

    @Test("A 64-character id (podman's) gets a hashed directory whose socket paths fit; short ids keep their name")
    func longIDs() throws {
        let root = "/run/kvmrun"
        let store = StateStore.directoryName(ofSandbox:)
        let id = String(repeating: "3f9e2c1b", count: 8)
        let name = store(id)
        #expect(name.count == 17 && name.hasPrefix("h") && name != store(String(id.dropLast()) + "0"))
        #expect("\(root)/sandboxes/\(name)/vsock.sock_1024".utf8.count < 96)
        #expect(store("c1") == "c1" && store(String(repeating: "a", count: 32)) == String(repeating: "a", count: 32))
        let temporary = Self.temporaryRoot("long")
        defer { _ = system("rm -rf \(temporary)") }
        let real = try StateStore(root: temporary)
        try real.createSandboxDirectory(id)
        #expect(real.sandboxDirectory(id) == "\(temporary)/sandboxes/\(name)")
        real.removeSandboxDirectory(id)
    }

    @Test("A dead process's identity is not alive; a recycled start time is not the same process")
    func identities() throws {
        let me = try #require(ProcessIdentity.of(getpid()))
        #expect(me.isAlive)
        #expect(!ProcessIdentity(pid: getpid(), startTime: me.startTime + 1).isAlive)
        #expect(ProcessIdentity.of(0) == nil)
    }

    @Test("An exclusive lock excludes a second one until released")
    func locks() throws {
        let root = Self.temporaryRoot("locks")
        defer { _ = system("rm -rf \(root)") }
        let store = try StateStore(root: root)
        try store.createSandboxDirectory("s1")
        let first = try StateLock(path: store.lockPath("s1"), mode: .exclusive)
        #expect(throws: RuntimeError.self) { try StateLock(path: store.lockPath("s1"), mode: .shared, timeoutSeconds: 0) }
        first.unlock()
        let shared = try StateLock(path: store.lockPath("s1"), mode: .shared, timeoutSeconds: 0)
        let shared2 = try StateLock(path: store.lockPath("s1"), mode: .shared, timeoutSeconds: 0)
        shared.unlock()
        shared2.unlock()
    }

    @Test("A rootfs becomes one cached ext4 image per content; a copy is a separate file")
    func rootfsImages() throws {
        guard access("/usr/sbin/mkfs.ext4", X_OK) == 0 || access("/sbin/mkfs.ext4", X_OK) == 0 else { return }
        let root = Self.temporaryRoot("images")
        defer { _ = system("rm -rf \(root)") }
        #expect(system("mkdir -p \(root)/a/bin \(root)/b/bin && echo hi > \(root)/a/bin/f && cp -a \(root)/a/bin/f \(root)/b/bin/f && touch -r \(root)/a/bin \(root)/b/bin") == 0)
        let first = try RootfsImage.cached(rootfs: "\(root)/a", imagesDirectory: "\(root)/images")
        let second = try RootfsImage.cached(rootfs: "\(root)/b", imagesDirectory: "\(root)/images")
        #expect(first == second, "same content, same image")
        #expect(system("echo changed > \(root)/b/bin/f") == 0)
        let third = try RootfsImage.cached(rootfs: "\(root)/b", imagesDirectory: "\(root)/images")
        #expect(third != first)
        #expect(system("debugfs -R 'cat /bin/f' \(first) 2>/dev/null | grep -qx hi") == 0, "the image holds the file")
        try RootfsImage.copy(first, to: "\(root)/own.ext4")
        #expect(system("cmp -s \(first) \(root)/own.ext4") == 0)
        #expect(throws: RuntimeError.invalidInput("rootfs \(root)/missing: not a directory")) {
            try RootfsImage.cached(rootfs: "\(root)/missing", imagesDirectory: "\(root)/images")
        }
    }
}

func readDirectory(_ path: String) -> [String]? {
    guard let handle = opendir(path) else { return nil }
    defer { closedir(handle) }
    var names: [String] = []
    while let entry = readdir(handle) {
        // SAFETY: d_name is a NUL-terminated array inside the dirent readdir returned.
        let name = withUnsafePointer(to: &entry.pointee.d_name) { $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) } }
        if name != "." && name != ".." && name != "lock" { names.append(name) }
    }
    return names.sorted()
}
