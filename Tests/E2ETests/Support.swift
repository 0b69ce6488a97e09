#if canImport(Glibc)
import Glibc
#endif
import Harness
import Testing

/// Paths and process helpers for the end-to-end tests, which run the real `kvmrun` binary on
/// the firmware kernel. Boot tests need a hardware-style KVM (VMX/SVM): `make test` runs them
/// inside the nested test host with KVMRUN_E2E=1.
enum E2E {
    static let packageRoot: String = {
        var path = #filePath
        for _ in 0..<3 { path = String(path[..<path.lastIndex(of: "/")!]) }
        return path
    }()

    static var environment: [String: String] {
        var result: [String: String] = [:]
        var pointer = environ
        while let entry = pointer.pointee {
            let text = String(cString: entry)
            if let equals = text.firstIndex(of: "=") {
                result[String(text[..<equals])] = String(text[text.index(after: equals)...])
            }
            pointer += 1
        }
        return result
    }

    /// Boot tests are on when KVMRUN_E2E=1 (set by `make test` inside the nested host).
    static let bootsEnabled = environment["KVMRUN_E2E"] == "1"

    /// The OCI runtime and podman suites also need KVMRUN_RUNTIME_E2E=1 (set by `make test`'s
    /// nested groups and `make test-runtime`): they change the host (podman's storage, netns,
    /// TAPs), so a plain `swift test` on a host with VMX/SVM leaves them out.
    static let runtimeEnabled = bootsEnabled && environment["KVMRUN_RUNTIME_E2E"] == "1"

    static var binary: String {
        if let path = environment["KVMRUN_BIN"] { return path }
        let release = packageRoot + "/.build/release/kvmrun"
        return access(release, X_OK) == 0 ? release : packageRoot + "/.build/debug/kvmrun"
    }

    static var firmware: String { environment["KVMRUN_FIRMWARE"] ?? packageRoot + "/firmware/out" }
    static var vmlinux: String { firmware + "/vmlinux" }
    static var bzImage: String { firmware + "/bzImage" }
    static var initramfs: String { firmware + "/initramfs.cpio.gz" }

    struct Result {
        let status: Int32
        let stdout: String
        let stderr: String
    }

    /// Runs kvmrun with `arguments` to completion (killed after `timeout` seconds).
    static func run(_ arguments: [String], timeout: Int = 120) throws -> Result {
        let child = try ChildProcess(executable: binary, arguments: arguments)
        let status = child.waitForExit(timeoutMilliseconds: timeout * 1000)
        if status == nil {
            child.signal(SIGKILL)
            _ = child.waitForExit(timeoutMilliseconds: 5000)
        }
        child.drain(timeoutMilliseconds: 2000)
        let result = Result(status: status ?? -1, stdout: String(decoding: child.stdoutText, as: UTF8.self),
                            stderr: String(decoding: child.stderrText, as: UTF8.self))
        if status == nil { Issue.record("kvmrun \(arguments) timed out after \(timeout) s; stderr: \(result.stderr)") }
        return result
    }

    /// A `vm run` of the firmware kernel with the test initramfs.
    static func boot(kernel: String = vmlinux, cpus: Int = 1, memory: String = "128M",
                     extraCommandLine: String = "", extra: [String] = []) throws -> Result {
        let cmdline = "console=ttyS0 reboot=k panic=-1 " + extraCommandLine
        return try run(["vm", "run", "--kernel", kernel, "--initrd", initramfs, "--cpus", String(cpus),
                        "--memory", memory, "--cmdline", cmdline] + extra)
    }

    static func temporaryPath(_ name: String) -> String {
        let directory = environment["TMPDIR"] ?? "/tmp"
        return "\(directory)/kvmrun-e2e-\(getpid())-\(name)"
    }

    static func writeFile(_ path: String, _ bytes: [UInt8]) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        precondition(fd >= 0, "cannot create \(path)")
        // SAFETY: writes the local array.
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
    }

    static func readFile(_ path: String) -> String {
        ProcessMemory.readSmall(path) ?? ""
    }
}
