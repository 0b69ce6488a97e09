// Test set-up for the sandbox network: what a CNI plugin would leave, made with ip(8) (allowed
// in tests only): a sandbox namespace holding eth0 (10.88.0.5/16, fd00::5/64, MTU 1400, default
// route via 10.88.0.1) whose veth peer `vpeer` (10.88.0.1/16) sits in a second namespace, so
// nothing touches the host's own namespace. Both namespaces go away in `remove()`, which the
// tests call in a defer.
#if canImport(Glibc)
import Glibc
#endif
import Harness

struct CommandFailure: Error, CustomStringConvertible {
    var description: String
}

/// Runs a program to its end; its stdout, or throws with its stderr when it fails.
@discardableResult
func runTool(_ executable: String, _ arguments: [String], allowFailure: Bool = false) throws -> String {
    let child = try ChildProcess(executable: executable, arguments: arguments)
    let status = child.waitForExit(timeoutMilliseconds: 20_000)
    child.drain(timeoutMilliseconds: 2000)
    let output = String(decoding: child.stdoutText, as: UTF8.self)
    if status != 0, !allowFailure {
        throw CommandFailure(description: "\(executable) \(arguments.joined(separator: " ")): status \(status.map(String.init) ?? "timeout"): "
            + String(decoding: child.stderrText, as: UTF8.self))
    }
    return output
}

@discardableResult
func ip(_ arguments: String...) throws -> String { try runTool("/usr/sbin/ip", arguments) }
@discardableResult
func tc(_ arguments: String...) throws -> String { try runTool("/usr/sbin/tc", arguments) }

final class NetnsFixture {
    let sandbox: String
    let peer: String
    var sandboxPath: String { "/run/netns/\(sandbox)" }
    var peerPath: String { "/run/netns/\(peer)" }

    /// `withVeth: false` leaves the sandbox namespace with lo only.
    init(_ tag: String, withVeth: Bool = true) throws {
        sandbox = "kvmrun-net-\(getpid())-\(tag)"
        peer = sandbox + "-peer"
        remove()
        do {
            try ip("netns", "add", sandbox)
            try ip("-n", sandbox, "link", "set", "lo", "up")
            guard withVeth else { return }
            try ip("netns", "add", peer)
            try ip("-n", peer, "link", "add", "vpeer", "type", "veth", "peer", "name", "eth0", "netns", sandbox)
            try ip("-n", sandbox, "link", "set", "eth0", "mtu", "1400", "up")
            try ip("-n", sandbox, "addr", "add", "10.88.0.5/16", "dev", "eth0")
            try ip("-n", sandbox, "addr", "add", "fd00::5/64", "dev", "eth0", "nodad")
            try ip("-n", sandbox, "route", "add", "default", "via", "10.88.0.1")
            try ip("-n", peer, "link", "set", "vpeer", "mtu", "1400", "up")
            try ip("-n", peer, "addr", "add", "10.88.0.1/16", "dev", "vpeer")
        } catch {
            remove()
            throw error
        }
    }

    func remove() {
        for name in [sandbox, peer] { _ = try? runTool("/usr/sbin/ip", ["netns", "del", name], allowFailure: true) }
    }

    /// The MAC of `device` in namespace `name`, from `ip -o link show`.
    func mac(_ device: String, in name: String) throws -> String {
        let line = try ip("-n", name, "-o", "link", "show", device)
        let words = line.split(separator: " ")
        guard let at = words.firstIndex(of: "link/ether"), at + 1 < words.count else { throw CommandFailure(description: "no MAC in: \(line)") }
        return String(words[at + 1])
    }
}
