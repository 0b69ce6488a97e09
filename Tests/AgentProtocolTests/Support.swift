#if canImport(Glibc)
import Glibc
#endif
import AgentClient
import AgentProtocol
import AgentServer
import Synchronization
import Sys
import Testing

/// Test plumbing: connected socket pairs, Unix listeners, threads that can be joined.
enum Plumbing {
    static func socketPair() throws -> (FileDescriptor, FileDescriptor) {
        var ends: [Int32] = [-1, -1]
        try sys("socketpair") { socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &ends) }
        return (FileDescriptor(ends[0]), FileDescriptor(ends[1]))
    }

    static func socketPath(_ name: String) -> String { "/tmp/kvmrun-agent-\(getpid())-\(name).sock" }

    /// A listening Unix socket at `path` (a stale file is removed first).
    static func listen(_ path: String) throws -> FileDescriptor {
        unlink(path)
        let fd = FileDescriptor(try sys("socket") { socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0) })
        _ = try withUnixAddress(path) { bind(fd.raw, $0, $1) }
        try sys("listen") { Glibc.listen(fd.raw, 16) }
        return fd
    }

    /// A server on one end of a socket pair and an `AgentClient` on the other.
    static func connected(_ server: TTRPCServer, defaultTimeout: Duration = .seconds(10)) throws -> AgentClient {
        let (serverEnd, clientEnd) = try socketPair()
        try startThread("test server connection") { server.serve(connection: serverEnd) }
        return try AgentClient(connection: clientEnd, defaultTimeout: defaultTimeout)
    }
}

/// Runs `count` bodies on threads of their own and waits for all of them.
func concurrently(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) throws {
    let latch = Latch(count)
    for index in 0..<count {
        try startThread("test worker \(index)") {
            body(index)
            latch.countDown()
        }
    }
    #expect(latch.wait(timeout: .seconds(30)), "threads did not finish within 30 s")
}

/// A count-down latch on `Parking`.
final class Latch: @unchecked Sendable {
    private let parking = Parking()
    private var count: Int

    init(_ count: Int) { self.count = count }

    func countDown() {
        parking.withLock { _ in count -= 1 }
        parking.wakeAll()
    }

    /// True when the count reached zero within `timeout`.
    func wait(timeout: Duration) -> Bool {
        let deadline = MonotonicClock.deadline(after: timeout)
        return parking.withLock(deadline: deadline) { wait in
            while count > 0 { if !wait() { return false } }
            return true
        }
    }

    var value: Int { parking.withLock { _ in count } }
}


/// The `AgentError` `body` throws, nil if it returns (any other error is a test failure).
func agentError(_ body: () throws -> Void) -> AgentError? {
    do {
        try body()
        return nil
    } catch let error as AgentError {
        return error
    } catch {
        Issue.record("not an AgentError: \(error)")
        return nil
    }
}
