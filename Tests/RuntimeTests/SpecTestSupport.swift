// File helpers for the spec bridge's tests, over RuntimeTest's (AgentSupport.swift).
#if canImport(Glibc)
import Glibc
#endif
import Harness

enum SpecTestFiles {
    static var agentBinary: String { RuntimeTest.agentBinary }

    /// A fresh directory for one test under .build/runtime-tests.
    static func directory(_ name: String) -> String { RuntimeTest.temporaryDirectory(name) }

    static func makeDirectories(_ path: String) { RuntimeTest.makeDirectories(path) }

    static func write(_ path: String, _ text: String, mode: mode_t = 0o644) {
        RuntimeTest.writeFile(path, Array(text.utf8), mode: mode)
    }

    static func write(_ path: String, _ bytes: [UInt8], mode: mode_t = 0o644) {
        RuntimeTest.writeFile(path, bytes, mode: mode)
    }

    /// The file's bytes, nil when it cannot be opened.
    static func read(_ path: String) -> [UInt8]? {
        guard access(path, R_OK) == 0 else { return nil }
        return RuntimeTest.readFile(path)
    }

    static func text(_ path: String) -> String? { read(path).map { String(decoding: $0, as: UTF8.self) } }

    /// st_mode (type and permission bits) without following a final link; nil when missing.
    static func mode(_ path: String) -> mode_t? {
        var info = stat()
        guard lstat(path, &info) == 0 else { return nil }
        return info.st_mode
    }

    /// rm -rf: the tree and everything in it.
    static func remove(_ path: String) {
        guard let child = try? ChildProcess(executable: "/bin/rm", arguments: ["-rf", path]) else { return }
        _ = child.waitForExit(timeoutMilliseconds: 60_000)
    }
}
