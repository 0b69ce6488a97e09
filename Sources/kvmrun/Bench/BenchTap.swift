#if canImport(Glibc)
import Glibc
#endif
import Harness

/// The TAP device `kvmrun bench io` creates for its run (persistent, with the host address),
/// shared by both VMMs in turn, and removes at the end. Uses iproute2's `ip`.
struct BenchTap {
    let name: String
    let ip: String

    init(name: String, hostAddress: String) throws {
        let candidates: [String] = ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"]
        guard let ip = candidates.first(where: { path in access(path, X_OK) == 0 }) else {
            throw BenchTCPPeer.Failure(description: "bench io: 'ip' not found (apt-get install iproute2)")
        }
        self.name = name
        self.ip = ip
        guard Self.run(ip, ["link", "show", name]) != 0 else {
            throw BenchTCPPeer.Failure(description: "bench io: network device '\(name)' already exists; pick another with --tap")
        }
        for step in [["tuntap", "add", "dev", name, "mode", "tap"],
                     ["addr", "add", hostAddress + "/24", "dev", name],
                     ["link", "set", name, "up"]] {
            guard Self.run(ip, step) == 0 else {
                remove()
                throw BenchTCPPeer.Failure(description: "bench io: 'ip \(step.joined(separator: " "))' failed")
            }
        }
    }

    func remove() {
        _ = Self.run(ip, ["tuntap", "del", "dev", name, "mode", "tap"])
    }

    private static func run(_ executable: String, _ arguments: [String]) -> Int32 {
        guard let child = try? ChildProcess(executable: executable, arguments: arguments) else { return -1 }
        return child.waitForExit(timeoutMilliseconds: 10_000) ?? -1
    }
}
