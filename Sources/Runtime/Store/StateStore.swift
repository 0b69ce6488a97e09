#if canImport(Glibc)
import Glibc
#endif
import FoundationEssentials

/// The on-disk layout under the runtime root (default /run/kvmrun):
///
///     ROOT/containers/CID          symlink → the sandbox id (claims the id atomically)
///     ROOT/sandboxes/SID/lock      flock: shared for readers, exclusive for changes
///                                  (SID: the id, or its hash when over 32 bytes: directoryName)
///     ROOT/sandboxes/SID/sandbox.json
///     ROOT/sandboxes/SID/CID.json  one per container
///     ROOT/sandboxes/SID/…         the VMM's sockets, console log, disk images, relay exit files
public struct StateStore: Sendable {
    public let root: String

    public init(root: String) throws(RuntimeError) {
        guard root.hasPrefix("/") else { throw .invalidInput("--root \(root): must be an absolute path") }
        self.root = root
        for directory in [root, root + "/containers", root + "/sandboxes"] {
            try StateStore.makeDirectory(directory)
        }
    }

    /// A sandbox's directory: named by its id, or for an id over 32 bytes (podman's and
    /// Kubernetes' are 64) by "h" and the id's 64-bit FNV-1a hash, so that the VMM's Unix socket
    /// paths inside it stay within the 108 bytes sockaddr_un holds. (A collision finds the
    /// directory taken: create fails with "already exists" and nothing is shared.)
    public func sandboxDirectory(_ id: String) -> String {
        "\(root)/sandboxes/\(StateStore.directoryName(ofSandbox: id))"
    }

    public static func directoryName(ofSandbox id: String) -> String {
        guard id.utf8.count > 32 else { return id }
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in id.utf8 { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3 }
        let hex = String(hash, radix: 16)
        return "h" + String(repeating: "0", count: 16 - hex.count) + hex
    }
    public func lockPath(_ sandboxID: String) -> String { sandboxDirectory(sandboxID) + "/lock" }

    /// The sandbox a container belongs to; notFound when the container id is unknown.
    public func sandboxID(ofContainer id: String) throws(RuntimeError) -> String {
        try StateStore.checkID(id)
        var buffer = [CChar](repeating: 0, count: 512)
        let count = readlink("\(root)/containers/\(id)", &buffer, buffer.count - 1)
        guard count > 0 else { throw .notFound("container \(id)") }
        return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Claims a container id for a sandbox; exists when the id is taken.
    public func claim(container id: String, sandbox: String) throws(RuntimeError) {
        try StateStore.checkID(id)
        guard symlink(sandbox, "\(root)/containers/\(id)") == 0 else {
            if errno == EEXIST { throw .exists("container \(id)") }
            throw .failed(step: "claim container id \(id)", reason: errnoText())
        }
    }

    public func release(container id: String) { unlink("\(root)/containers/\(id)") }

    public func containerIDs() -> [String] { StateStore.list(root + "/containers") }

    public func createSandboxDirectory(_ id: String) throws(RuntimeError) {
        try StateStore.checkID(id)
        guard mkdir(sandboxDirectory(id), 0o700) == 0 else {
            if errno == EEXIST { throw .exists("sandbox \(id)") }
            throw .failed(step: "create \(sandboxDirectory(id))", reason: errnoText())
        }
    }

    public func loadSandbox(_ id: String) throws(RuntimeError) -> SandboxRecord {
        let record: SandboxRecord
        do {
            record = try AtomicFile.readJSON(SandboxRecord.self, from: sandboxDirectory(id) + "/sandbox.json")
        } catch .notFound {
            throw .notFound("sandbox \(id)")
        }
        guard record.id == id else {
            throw .failed(step: "load sandbox \(id)", reason: "\(sandboxDirectory(id)) holds sandbox \(record.id) (hash collision)")
        }
        return record
    }

    public func save(_ sandbox: SandboxRecord) throws(RuntimeError) {
        try AtomicFile.writeJSON(sandbox, to: sandboxDirectory(sandbox.id) + "/sandbox.json")
    }

    public func loadContainer(_ id: String, sandbox: String) throws(RuntimeError) -> ContainerRecord {
        do {
            return try AtomicFile.readJSON(ContainerRecord.self, from: sandboxDirectory(sandbox) + "/\(id).json")
        } catch .notFound {
            throw .notFound("container \(id)")
        }
    }

    public func save(_ container: ContainerRecord) throws(RuntimeError) {
        try AtomicFile.writeJSON(container, to: sandboxDirectory(container.sandboxID) + "/\(container.id).json")
    }

    public func removeContainerFile(_ id: String, sandbox: String) {
        unlink(sandboxDirectory(sandbox) + "/\(id).json")
    }

    /// Removes a sandbox's directory and everything in it (no subdirectories but `disks`).
    public func removeSandboxDirectory(_ id: String) {
        let directory = sandboxDirectory(id)
        for sub in ["disks"] {
            for name in StateStore.list(directory + "/" + sub) { unlink("\(directory)/\(sub)/\(name)") }
            rmdir(directory + "/" + sub)
        }
        for name in StateStore.list(directory) { unlink(directory + "/" + name) }
        rmdir(directory)
    }

    /// Container ids as runc accepts them: letters, digits and `_ + - .`, at most 1024 bytes,
    /// not "." or "..".
    public static func checkID(_ id: String) throws(RuntimeError) {
        let allowed = id.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x61 && byte <= 0x7a)
                || byte == 0x5f || byte == 0x2b || byte == 0x2d || byte == 0x2e
        }
        guard !id.isEmpty, id.utf8.count <= 1024, allowed, id != ".", id != ".." else {
            throw .invalidInput("invalid container id '\(id)': use letters, digits and _ + - . only")
        }
    }

    static func makeDirectory(_ path: String) throws(RuntimeError) {
        guard mkdir(path, 0o711) == 0 || errno == EEXIST else {
            throw .failed(step: "create \(path)", reason: errnoText())
        }
    }

    static func list(_ directory: String) -> [String] {
        guard let handle = opendir(directory) else { return [] }
        defer { closedir(handle) }
        var names: [String] = []
        while let entry = readdir(handle) {
            // SAFETY: d_name is a NUL-terminated array inside the dirent readdir returned.
            let name = withUnsafePointer(to: &entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }
}
