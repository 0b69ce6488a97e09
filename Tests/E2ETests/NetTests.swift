#if canImport(Glibc)
import Glibc
#endif
import Harness
import Testing

/// virtio-net in a real guest over a real tap in the nested host: TCP both ways with bytes
/// checked, and the tap's lifetime (kvmrun removes a tap it created, leaves an existing one).
@Suite("virtio-net in the guest", .serialized,
       .enabled(if: E2E.bootsEnabled, "needs a hardware-style KVM: `make test` runs these in the nested host (KVMRUN_E2E=1)"))
struct NetTests {
    static func start(tap: String, script: String, net: String) throws -> ChildProcess {
        try ChildProcess(executable: E2E.binary, arguments: [
            "vm", "run", "--kernel", E2E.vmlinux, "--initrd", E2E.initramfs, "--memory", "256M",
            "--net", tap, "--cmdline", "console=ttyS0 reboot=k panic=-1 kvmrun.script=\(script) kvmrun.net=\(net)",
        ])
    }

    /// Waits for the VM to end and checks it exited 0 after the guest script reported the MAC
    /// (prefix) and the size and sha256 of what it received.
    @discardableResult
    static func finish(_ child: ChildProcess, mac: String, received payload: [UInt8]) throws -> String {
        let status = child.waitForExit(timeoutMilliseconds: 120_000)
        if status == nil { child.signal(SIGKILL); _ = child.waitForExit(timeoutMilliseconds: 5000) }
        child.drain(timeoutMilliseconds: 2000)
        let stdout = String(decoding: child.stdoutText, as: UTF8.self)
        #expect(status == 0, "stderr: \(String(decoding: child.stderrText, as: UTF8.self))")
        #expect(stdout.contains("net_mac=\(mac)"), "console: \(stdout.suffix(2000))")
        #expect(stdout.contains("net_received_bytes=\(payload.count)"))
        #expect(stdout.contains("net_received_sha256=\(try Net.sha256(payload))"))
        #expect(stdout.contains("KVMRUN_SCRIPT_EXIT=0"))
        // The guest took the offloads (so TSO frames crossed the tap both ways) and MRG_RXBUF.
        let features = stdout.firstRange(of: "net_features=").map { Array(stdout[$0.upperBound...].prefix(64)) }
        for (bit, name) in [(0, "CSUM"), (1, "GUEST_CSUM"), (7, "GUEST_TSO4"), (11, "HOST_TSO4"), (15, "MRG_RXBUF")] {
            #expect(features.map { $0.count > bit && $0[bit] == "1" } == true, "\(name) negotiated: \(features.map { String($0) } ?? "none"); console: \(stdout.suffix(1500))")
        }
        return stdout
    }

    @Test("an existing tap: 1 MiB host → guest and back over TCP, byte for byte; the tap stays after exit")
    func tcpBothWays() throws {
        let tap = "kvmtap0"
        try Net.ip("tuntap add dev \(tap) mode tap")
        defer { _ = try? Net.command(Net.ipTool, ["tuntap", "del", "dev", tap, "mode", "tap"]) }
        try Net.ip("addr add 10.0.2.1/24 dev \(tap)")
        try Net.ip("link set \(tap) up")
        let download = try Net.listen("10.0.2.1", 5001), upload = try Net.listen("10.0.2.1", 5002)
        defer { close(download); close(upload) }
        let payload = Net.payload(1 << 20, seed: 42)

        let child = try NetTests.start(tap: "tap=\(tap),mac=52:54:00:12:34:56", script: "net",
                                       net: "10.0.2.2/24,10.0.2.1,5001")
        var echoed: [UInt8] = []
        do {
            let incoming = try Net.accept(download, seconds: 120, child: child)
            let start = Net.seconds()
            try Net.sendAll(incoming, payload, seconds: 60, child: child)
            let sent = Net.seconds()
            echoed = try Net.receiveAll(try Net.accept(upload, seconds: 60, child: child), seconds: 60, child: child)
            // Information only (nested emulation makes absolute speeds meaningless).
            print("virtio-net: host→guest 1 MiB sent in \(sent - start) s, round trip done in \(Net.seconds() - start) s")
        } catch {
            Issue.record("\(error)")
        }
        let console = try NetTests.finish(child, mac: "52:54:00:12:34:56", received: payload)
        #expect(echoed.count == payload.count)
        #expect(echoed == payload, "the guest sent back what it received")
        #expect(console.contains("net_ping=ok"), "the guest pinged the host")
        if let stats = console.firstRange(of: "net_stats ") {
            print("virtio-net: guest \(console[stats.upperBound...].prefix(while: { !$0.isNewline }))")
        }
        #expect(Net.exists(tap), "kvmrun left the existing tap in place")
    }

    @Test("a tap kvmrun creates: up while the VM runs, busy for a second VMM, takes a host-initiated TCP stream, gone after exit")
    func createdTap() throws {
        let tap = "kvmnew0"
        #expect(!Net.exists(tap))
        let child = try NetTests.start(tap: "tap=\(tap)", script: "netlisten", net: "10.0.3.2/24,10.0.3.1,7000")
        let listening = child.waitForStdout(containing: "KVMRUN_NET_LISTENING", timeoutMilliseconds: 120_000)
        #expect(listening != nil, "console: \(String(decoding: child.stdoutText, as: UTF8.self).suffix(2000))")
        #expect(Net.exists(tap), "kvmrun created \(tap)")

        let second = try E2E.run(["vm", "run", "--kernel", E2E.vmlinux, "--net", "tap=\(tap)"], timeout: 60)
        #expect(second.status != 0)
        #expect(second.stderr.contains("tap \(tap)") && second.stderr.contains("EBUSY"), "stderr: \(second.stderr)")

        let payload = Net.payload(256 << 10, seed: 7)
        do {
            try Net.ip("addr add 10.0.3.1/24 dev \(tap)")
            let connection = try Net.connect("10.0.3.2", 7000, attempts: 100, child: child)
            try Net.sendAll(connection, payload, seconds: 60, child: child)
        } catch {
            Issue.record("\(error)")
        }
        try NetTests.finish(child, mac: "02:4b:", received: payload)
        #expect(!Net.exists(tap), "the tap kvmrun created is gone after it exits")
    }
}

extension NetTests {
    @Test("two NICs; deleting one tap under the running VM is logged once, the other is untouched, the VM stops cleanly")
    func tapDeleted() throws {
        let tap = "kvmdel0", other = "kvmdel1"
        try Net.ip("tuntap add dev \(tap) mode tap")
        defer { if Net.exists(tap) { _ = try? Net.command(Net.ipTool, ["tuntap", "del", "dev", tap, "mode", "tap"]) } }
        let child = try ChildProcess(executable: E2E.binary, arguments: [
            "vm", "run", "--kernel", E2E.vmlinux, "--initrd", E2E.initramfs, "--net", "tap=\(tap)", "--net", "tap=\(other)",
            "--cmdline", "console=ttyS0 reboot=k panic=-1 kvmrun.hold=60",
        ])
        #expect(child.waitForStdout(containing: "KVMRUN_INIT_OK", timeoutMilliseconds: 120_000) != nil)
        #expect(Net.exists(other))
        try Net.ip("link del \(tap)")
        #expect(!Net.exists(tap))
        #expect(Net.exists(other))
        child.signal(SIGTERM)
        let status = child.waitForExit(timeoutMilliseconds: 20_000)
        child.drain(timeoutMilliseconds: 1000)
        let stderr = String(decoding: child.stderrText, as: UTF8.self)
        #expect(status == 143, "stopped by the signal, not a crash; stderr: \(stderr)")
        #expect(stderr.contains("tap \(tap) reported an error"), "stderr: \(stderr)")
        #expect(stderr.ranges(of: "receiving stopped").count == 1, "logged once: \(stderr)")
        #expect(!Net.exists(other), "the tap kvmrun created is gone")
    }
}

/// Bad --net input is refused before any guest runs, naming the option or the tap. These need
/// no hardware-style KVM; the tap checks need root, /dev/net/tun and /dev/kvm.
@Suite("Bad --net input")
struct NetBadInputTests {
    static var canOpenTaps: Bool {
        getuid() == 0 && access("/dev/net/tun", R_OK | W_OK) == 0 && access("/dev/kvm", R_OK | W_OK) == 0
            && access(E2E.vmlinux, R_OK) == 0
    }

    @Test("a malformed --net is a usage error naming the option and the problem", arguments: [
        ("tap=a,mac=01:00:5e:00:00:01", "multicast"),
        ("tap=name-longer-than-15", "longer than 15"),
        ("mac=02:00:00:00:00:01", "tap=NAME is required"),
    ])
    func malformed(spec: String, problem: String) throws {
        let result = try E2E.run(["vm", "run", "--kernel", "/nonexistent", "--net", spec])
        #expect(result.status == 64, "stderr: \(result.stderr)")
        #expect(result.stderr.contains("--net \(spec): "), "stderr: \(result.stderr)")
        #expect(result.stderr.contains(problem), "stderr: \(result.stderr)")
    }

    @Test("an interface that is not a tap is refused, naming it",
          .enabled(if: canOpenTaps, "needs root, /dev/net/tun, /dev/kvm and firmware/out/vmlinux"))
    func notATap() throws {
        let result = try E2E.run(["vm", "run", "--kernel", E2E.vmlinux, "--net", "tap=lo"])
        #expect(result.status != 0)
        #expect(result.stderr.contains("--net tap=lo: cannot attach to tap lo: EINVAL"), "stderr: \(result.stderr)")
    }

    @Test("a tap created for a VM that then fails to start is removed",
          .enabled(if: canOpenTaps, "needs root, /dev/net/tun, /dev/kvm and firmware/out/vmlinux"))
    func createdThenFailed() throws {
        let tap = "kvmbad\(getpid() % 100_000)"
        let result = try E2E.run(["vm", "run", "--kernel", E2E.vmlinux, "--net", "tap=\(tap)", "--net", "tap=lo"])
        #expect(result.status != 0)
        #expect(result.stderr.contains("tap lo"), "stderr: \(result.stderr)")
        #expect(!Net.exists(tap))
    }
}
