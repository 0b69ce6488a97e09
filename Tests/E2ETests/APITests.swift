#if canImport(Glibc)
import Glibc
#endif
import Harness
import Testing

/// The control API of a running VM, driven through `kvmrun vm …` clients and raw bytes on the socket.
@Suite("Control API on a running VM", .serialized,
       .enabled(if: E2E.bootsEnabled, "needs a hardware-style KVM: `make test` runs these in the nested host (KVMRUN_E2E=1)"))
struct APITests {
    static func client(_ arguments: [String], socket: String) throws -> E2E.Result {
        try E2E.run(["vm"] + arguments + ["--api-socket", socket], timeout: 60)
    }

    /// A 2-vCPU VM serving the API on `socket`, once its console showed `marker` (nil, with the
    /// issue recorded, if it never did).
    static func startVM(socket: String, commandLine: String, marker: String) throws -> ChildProcess? {
        let vm = try ChildProcess(executable: E2E.binary, arguments: [
            "vm", "run", "--kernel", E2E.vmlinux, "--initrd", E2E.initramfs, "--cpus", "2",
            "--cmdline", "console=ttyS0 reboot=k panic=-1 " + commandLine, "--api-socket", socket,
        ])
        guard vm.waitForStdout(containing: marker, timeoutMilliseconds: 120_000) != nil else {
            Issue.record("no \(marker) on the console: \(console(vm).suffix(2000))")
            return nil
        }
        return vm
    }

    static func console(_ child: ChildProcess) -> String { String(decoding: child.stdoutText, as: UTF8.self) }

    @Test("info shows Running; pause stops all output; malformed requests get 4xx; resume lets the guest finish with 0; the socket is 0600 and removed")
    func pauseAndResume() throws {
        let socket = E2E.temporaryPath("api.sock")
        defer { unlink(socket) }
        guard let vm = try APITests.startVM(socket: socket, commandLine: "kvmrun.script=counter", marker: "KVMRUN_TICK 1") else { return }
        var info = stat()
        #expect(stat(socket, &info) == 0)
        #expect(info.st_mode & S_IFMT == S_IFSOCK)
        #expect(info.st_mode & 0o777 == 0o600, "mode \(String(info.st_mode & 0o777, radix: 8))")

        let running = try APITests.client(["info"], socket: socket)
        #expect(running.status == 0, "stderr: \(running.stderr)")
        #expect(running.stdout.contains(#""state":"Running""#), "info: \(running.stdout)")
        #expect(running.stdout.contains(#""vcpus":2"#))
        #expect(running.stdout.contains(#""type":"rng""#))

        // Pause first (the guest ticks for 25 s only); the API keeps serving while paused.
        let pause = try APITests.client(["pause"], socket: socket)
        #expect(pause.status == 0, "stderr: \(pause.stderr)")
        // Everything the guest wrote before the pause is in the pipe by now; read it all.
        _ = vm.waitForStdout(containing: "NOT-IN-THE-CONSOLE", timeoutMilliseconds: 500)
        let before = vm.stdoutText.count
        let paused = try APITests.client(["info"], socket: socket)
        #expect(paused.stdout.contains(#""state":"Paused""#), "info: \(paused.stdout)")

        let malformed: [(String, Int)] = [
            ("GARBAGE\r\n\r\n", 400),
            ("PATCH /vm HTTP/1.1\r\nContent-Length: 9\r\n\r\n{\"state\":", 400),
            ("PATCH /vm HTTP/1.1\r\nContent-Length: 19\r\n\r\n{\"state\": \"Asleep\"}", 400),
            ("PATCH /vm HTTP/1.1\r\n\r\n", 411),
            ("GET /nowhere HTTP/1.1\r\n\r\n", 404),
            ("DELETE /vm HTTP/1.1\r\n\r\n", 405),
            ("PATCH /vm HTTP/1.1\r\nContent-Length: 100000\r\n\r\n", 413),
        ]
        for (text, status) in malformed {
            let reply = RawAPIClient.exchange(socket, Array(text.utf8))
            #expect(reply.hasPrefix("HTTP/1.1 \(status) "), "\(text.debugDescription) got: \(reply.prefix(300))")
            #expect(reply.contains("fault_message"))
        }
        let metrics = try APITests.client(["metrics"], socket: socket)
        #expect(metrics.status == 0 && metrics.stdout.contains(#""vcpus":[{"exits":"#), "metrics: \(metrics.stdout) \(metrics.stderr)")
        #expect(metrics.stdout.contains(#""virtio-rng":{"bytes_served":"#), "metrics: \(metrics.stdout)")

        _ = vm.waitForStdout(containing: "NOT-IN-THE-CONSOLE", timeoutMilliseconds: 2000)
        #expect(vm.stdoutText.count == before,
                "the guest printed while paused: \(String(decoding: vm.stdoutText.suffix(from: before), as: UTF8.self))")

        #expect(!String(decoding: vm.stdoutText.prefix(before), as: UTF8.self).contains("KVMRUN_TICK 24"),
                "the guest had finished counting before the pause; the test proves nothing")
        let resume = try APITests.client(["resume"], socket: socket)
        #expect(resume.status == 0, "stderr: \(resume.stderr)")
        let status = vm.waitForExit(timeoutMilliseconds: 120_000)
        vm.drain(timeoutMilliseconds: 2000)
        #expect(status == 0, "stderr: \(String(decoding: vm.stderrText, as: UTF8.self))")
        #expect(APITests.console(vm).contains("KVMRUN_TICK 24"))
        #expect(APITests.console(vm).contains("KVMRUN_SCRIPT_EXIT=0"), "console: \(APITests.console(vm).suffix(1500))")
        #expect(access(socket, F_OK) != 0, "the socket is still there after the VM exited")
    }

    @Test("a second VM cannot take a live socket; Ctrl-Alt-Del, memory and drive requests the VM cannot serve are 400s; shutdown ends a paused VM with 0")
    func shutdownWhilePaused() throws {
        let socket = E2E.temporaryPath("api-shutdown.sock")
        defer { unlink(socket) }
        guard let vm = try APITests.startVM(socket: socket, commandLine: "kvmrun.hold=300", marker: "KVMRUN_INIT_OK") else { return }
        let second = try E2E.boot(extraCommandLine: "kvmrun.hold=300", extra: ["--api-socket", socket])
        #expect(second.status != 0)
        #expect(second.stderr.contains("another process is serving"), "stderr: \(second.stderr)")

        let keys = try APITests.client(["ctrl-alt-del"], socket: socket)
        #expect(keys.status == 1)
        #expect(keys.stderr.contains("400") && keys.stderr.contains("keyboard"), "stderr: \(keys.stderr)")

        // Requests the VMM refuses (no hotplug region, no such drive) are 400s the client reports.
        for arguments in [["memory"], ["memory", "--size", "64M"], ["drive", "--id", "nosuch", "--path", "/nonexistent.img"]] {
            let refused = try APITests.client(arguments, socket: socket)
            #expect(refused.status == 1 && refused.stderr.contains(": 400 Bad Request: "), "\(arguments): \(refused.stderr)")
        }
        #expect(try APITests.client(["pause"], socket: socket).status == 0)
        let shutdown = try APITests.client(["shutdown"], socket: socket)
        #expect(shutdown.status == 0, "stderr: \(shutdown.stderr)")
        let status = vm.waitForExit(timeoutMilliseconds: 30_000)
        vm.drain(timeoutMilliseconds: 2000)
        #expect(status == 0, "stderr: \(String(decoding: vm.stderrText, as: UTF8.self))")
        #expect(access(socket, F_OK) != 0, "the socket is still there after the VM exited")
    }
}

@Suite("Control API client without a VM")
struct APIClientTests {
    @Test("a missing socket ends the client with status 1 and says so")
    func missingSocket() throws {
        let result = try E2E.run(["vm", "info", "--api-socket", E2E.temporaryPath("no-such.sock")])
        #expect(result.status == 1)
        #expect(result.stderr.contains("ENOENT") && result.stderr.contains("--api-socket"), "stderr: \(result.stderr)")
    }

    @Test("memory --size must be a whole number of MiB (usage error)")
    func badSize() throws {
        let result = try E2E.run(["vm", "memory", "--size", "1500K", "--api-socket", "/tmp/x.sock"])
        #expect(result.status == 64)
        #expect(result.stderr.contains("--size"), "stderr: \(result.stderr)")
    }
}

/// Raw bytes through the API socket, for requests the CLI would never send.
enum RawAPIClient {
    /// Sends `bytes`, reads until the server closes; returns the reply as text ("" on failure).
    static func exchange(_ path: String, _ bytes: [UInt8]) -> String {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return "" }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let pathBytes = Array(path.utf8)
        guard pathBytes.count < 108 else { return "" }
        // SAFETY: the path is shorter than the 108 bytes of sun_path; the rest stays zero.
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: pathBytes) }
        let connected = withUnsafePointer(to: &address) { pointer in
            // SAFETY: sockaddr_un begins with the sockaddr header; the length is the whole struct.
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard connected == 0 else { return "" }
        var timeout = timeval(tv_sec: 30, tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        // SAFETY: sends the local array.
        _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        var reply: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            // SAFETY: reads at most chunk.count bytes into the local buffer.
            let count = read(fd, &chunk, chunk.count)
            if count <= 0 { break }
            reply += chunk[0..<count]
        }
        return String(decoding: reply, as: UTF8.self)
    }
}
