#if canImport(Glibc)
import Glibc
#endif
import Harness
import Testing

/// virtio-vsock with the hybrid host side, in real guests: the test process is the host
/// application, the guest runs firmware/initramfs/tools/vsock.c through tests/vsock-*.sh.
/// Data is checked byte for byte here and in the guest; only summaries go over the console.
@Suite("virtio-vsock in a guest", .serialized,
       .enabled(if: E2E.bootsEnabled, "needs a hardware-style KVM: `make test` runs these in the nested host (KVMRUN_E2E=1)"))
struct VsockE2ETests {
    static let streamBytes = 4 * 1024 * 1024

    /// Starts kvmrun with a vsock device (CID 3) on `uds`, running guest script `script`.
    static func start(script: String, uds: String) throws -> ChildProcess {
        let cmdline = "console=ttyS0 reboot=k panic=-1 quiet kvmrun.script=\(script)"
        return try ChildProcess(executable: E2E.binary, arguments: [
            "vm", "run", "--kernel", E2E.vmlinux, "--initrd", E2E.initramfs, "--memory", "256M",
            "--cmdline", cmdline, "--vsock", "cid=3,uds=\(uds)"])
    }

    /// Waits for kvmrun to end; returns its status and console.
    static func finish(_ child: ChildProcess) -> (Int32, String, String) {
        let status = child.waitForExit(timeoutMilliseconds: 300_000)
        if status == nil { child.signal(SIGKILL); _ = child.waitForExit(timeoutMilliseconds: 5000) }
        child.drain(timeoutMilliseconds: 2000)
        return (status ?? -1, String(decoding: child.stdoutText, as: UTF8.self), String(decoding: child.stderrText, as: UTF8.self))
    }

    /// Connects through the VM's socket to guest port `port`: CONNECT, then the OK line.
    static func connectGuest(_ uds: String, port: Int) -> (fd: Int32, okLine: String?) {
        let fd = HostUnix.connect(uds)
        guard fd >= 0, HostUnix.writeAll(fd, Array("CONNECT \(port)\n".utf8)) else { return (fd, nil) }
        return (fd, HostUnix.readLine(fd))
    }

    @Test("host-initiated: CONNECT/OK, 4 MiB to the guest and 4 MiB from it, byte for byte; RST closes the client; socket 0600, removed at exit")
    func hostInitiated() throws {
        let uds = E2E.temporaryPath("vsock-host.sock")
        let child = try VsockE2ETests.start(script: "vsock-host", uds: uds)
        let ready = child.waitForStdout(containing: "VSOCK_LISTENING port=5000", timeoutMilliseconds: 180_000) != nil
            && child.waitForStdout(containing: "VSOCK_LISTENING port=5001", timeoutMilliseconds: 60_000) != nil
        #expect(ready, "the guest never listened")
        var info = stat()
        #expect(lstat(uds, &info) == 0 && info.st_mode & S_IFMT == S_IFSOCK && info.st_mode & 0o777 == 0o600)

        if ready {
            // No guest listener on 5999: the guest answers RST and the client is closed without OK.
            let (refused, noLine) = VsockE2ETests.connectGuest(uds, port: 5999)
            #expect(refused >= 0 && noLine == nil, "got '\(noLine ?? "")'")
            close(refused)

            let clock = ContinuousClock()
            let start = clock.now
            // Host → guest: the guest verifies and answers VERIFIED <n>.
            let (toGuest, ok) = VsockE2ETests.connectGuest(uds, port: 5000)
            #expect(ok?.hasPrefix("OK ") == true, "first line: \(ok ?? "none")")
            #expect(HostUnix.sendPattern(toGuest, count: VsockE2ETests.streamBytes, seed: 5000))
            shutdown(toGuest, Int32(SHUT_WR))
            let answer = String(decoding: HostUnix.readToEnd(toGuest), as: UTF8.self)
            close(toGuest)
            #expect(answer == "VERIFIED \(VsockE2ETests.streamBytes)\n")
            print("vsock e2e: host→guest \(VsockE2ETests.streamBytes) bytes in \(clock.now - start)")

            // Guest → host: verified here.
            let (fromGuest, ok2) = VsockE2ETests.connectGuest(uds, port: 5001)
            #expect(ok2?.hasPrefix("OK ") == true && ok2 != ok, "second line: \(ok2 ?? "none")")
            let received = HostUnix.receivePattern(fromGuest, seed: 5001)
            close(fromGuest)
            #expect(received.count == VsockE2ETests.streamBytes)
            #expect(received.mismatch == nil)
            print("vsock e2e: both host-initiated streams done after \(clock.now - start)")
        }
        let (status, console, stderr) = VsockE2ETests.finish(child)
        #expect(console.contains("KVMRUN_SCRIPT_EXIT=0"), "console: \(console.suffix(1500))")
        #expect(status == 0, "stderr: \(stderr)")
        #expect(access(uds, F_OK) != 0, "the VM's socket is removed at exit")
    }

    @Test("guest-initiated: the VMM connects to <uds>_<port>; 4 MiB each way byte for byte; no listener → RST")
    func guestInitiated() throws {
        let uds = E2E.temporaryPath("vsock-guest.sock")
        let sink = HostUnix.listen("\(uds)_6000")
        let source = HostUnix.listen("\(uds)_6001")
        defer { close(sink); close(source); unlink("\(uds)_6000"); unlink("\(uds)_6001") }
        #expect(sink >= 0 && source >= 0)
        let child = try VsockE2ETests.start(script: "vsock-guest", uds: uds)

        let fromGuest = HostUnix.accept(sink, seconds: 180)
        let clock = ContinuousClock()
        let start = clock.now
        #expect(fromGuest >= 0, "the guest never connected to port 6000")
        if fromGuest >= 0 {
            let received = HostUnix.receivePattern(fromGuest, seed: 6000)
            #expect(received.count == VsockE2ETests.streamBytes)
            #expect(received.mismatch == nil)
            _ = HostUnix.writeAll(fromGuest, Array("RECEIVED \(received.count)".utf8))
            close(fromGuest)
            print("vsock e2e: guest→host \(received.count) bytes in \(clock.now - start)")
        }
        let toGuest = HostUnix.accept(source, seconds: 120)
        #expect(toGuest >= 0, "the guest never connected to port 6001")
        if toGuest >= 0 {
            #expect(HostUnix.sendPattern(toGuest, count: VsockE2ETests.streamBytes, seed: 6001))
            close(toGuest)
            print("vsock e2e: both guest-initiated streams done after \(clock.now - start)")
        }
        let (status, console, stderr) = VsockE2ETests.finish(child)
        #expect(console.contains("VSOCK_SENT bytes=\(VsockE2ETests.streamBytes) reply=RECEIVED \(VsockE2ETests.streamBytes)"),
                "console: \(console.suffix(1500))")
        #expect(console.contains("VSOCK_RECEIVED bytes=\(VsockE2ETests.streamBytes) expected=\(VsockE2ETests.streamBytes)"))
        #expect(console.contains("VSOCK_REFUSED port=6999 result=-1"))
        #expect(console.contains("KVMRUN_SCRIPT_EXIT=0"))
        #expect(status == 0, "stderr: \(stderr)")
    }

    @Test("32 concurrent guest streams, each echoed by the host and checked by the guest")
    func concurrentStreams() throws {
        let uds = E2E.temporaryPath("vsock-multi.sock")
        let listener = HostUnix.listen("\(uds)_7000")
        defer { close(listener); unlink("\(uds)_7000") }
        #expect(listener >= 0)
        let child = try VsockE2ETests.start(script: "vsock-multi", uds: uds)
        let report = VsockEchoServer.serve(listener: listener, expected: 32, idleSeconds: 180)
        let (status, console, stderr) = VsockE2ETests.finish(child)
        #expect(report.accepted == 32)
        #expect(report.completed == 32)
        #expect(report.echoedBytes == 32 * 393216)
        #expect(console.contains("VSOCK_MULTI streams=32 ok=32 failed=0"), "console: \(console.suffix(1500))")
        #expect(console.contains("KVMRUN_SCRIPT_EXIT=0"))
        #expect(status == 0, "stderr: \(stderr)")
    }
}

/// The VM's socket path on the host: refused while another process listens there, a stale
/// socket replaced and removed again at exit. No guest runs (these fail or stop before boot),
/// so they also run on the development host.
@Suite("virtio-vsock socket path and option errors")
struct VsockPathTests {
    @Test("a live socket at the uds path: kvmrun refuses to start and leaves it alone")
    func liveSocket() throws {
        let path = E2E.temporaryPath("vsock-live.sock")
        let listener = HostUnix.listen(path)
        defer { close(listener); unlink(path) }
        let result = try E2E.run(["vm", "run", "--kernel", E2E.vmlinux, "--vsock", "cid=3,uds=\(path)"])
        #expect(result.status != 0)
        #expect(result.stderr.contains("--vsock uds=\(path)") && result.stderr.contains("another process is listening"),
                "stderr: \(result.stderr)")
        #expect(access(path, F_OK) == 0)
    }

    @Test("a stale socket is replaced, and the VM's socket is removed when kvmrun exits")
    func staleSocket() throws {
        let path = E2E.temporaryPath("vsock-stale.sock")
        close(HostUnix.listen(path))
        #expect(access(path, F_OK) == 0)
        let kernel = E2E.temporaryPath("vsock-not-a-kernel")
        E2E.writeFile(kernel, [UInt8](repeating: 0x90, count: 8192))
        defer { unlink(kernel); unlink(path) }
        let result = try E2E.run(["vm", "run", "--kernel", kernel, "--vsock", "cid=3,uds=\(path)"])
        #expect(result.stderr.contains("not a Linux kernel"), "got past the socket: \(result.stderr)")
        #expect(access(path, F_OK) != 0)
    }

    @Test("a bad --vsock is a usage error naming the option")
    func badOption() throws {
        let result = try E2E.run(["vm", "run", "--kernel", E2E.vmlinux, "--vsock", "cid=2,uds=/tmp/x"])
        #expect(result.status == 64)
        #expect(result.stderr.contains("--vsock: cid '2'"), "stderr: \(result.stderr)")
    }
}
