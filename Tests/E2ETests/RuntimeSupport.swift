#if canImport(Glibc)
import Glibc
#endif
import Harness
import Testing

/// The OCI runtime driven the way an engine drives it: the real `kvmrun` binary with runc's
/// verbs and a `--root` of its own, bundles written by scripts/busybox-bundle (the busybox tree
/// the firmware build makes), and what is left on the machine counted afterwards.
final class RuntimeHarness {
    let root: String
    let work: String
    private var serial = 0

    init(_ name: String) {
        work = E2E.temporaryPath("rt-\(name)")
        root = work + "/root"
        _ = try? E2E.run(["--root", root, "list"])   // nothing; makes sure the binary runs at all
        system("rm -rf '\(work)' && mkdir -p '\(work)'")
    }

    deinit {
        // Whatever a failed test left: every container deleted with --force, then the files.
        for id in ids() { _ = try? kvmrun(["delete", "--force", id]) }
        system("rm -rf '\(work)'")
    }

    struct Result: CustomStringConvertible {
        let status: Int32
        let stdout: String
        let stderr: String
        var description: String { "status \(status), stdout: \(stdout), stderr: \(stderr)" }
    }

    /// Runs `kvmrun --root ROOT ARGS` to its end with stdout and stderr in files (not pipes: the
    /// relay and VMM processes `create` leaves behind must not hold the test's pipes open).
    func kvmrun(_ arguments: [String], timeout: Int = 180) throws -> Result {
        serial += 1
        let out = "\(work)/out.\(serial)", err = "\(work)/err.\(serial)"
        let child = try ChildProcess(executable: "/bin/sh", arguments: [
            "-c", "exec \"$0\" \"$@\" >'\(out)' 2>'\(err)' </dev/null", E2E.binary, "--root", root,
        ] + arguments)
        let status = child.waitForExit(timeoutMilliseconds: timeout * 1000)
        if status == nil {
            child.signal(SIGKILL)
            _ = child.waitForExit(timeoutMilliseconds: 5000)
            Issue.record("kvmrun \(arguments) timed out after \(timeout) s")
        }
        let result = Result(status: status ?? -1, stdout: E2E.readFile(out), stderr: E2E.readFile(err))
        unlink(out)
        unlink(err)
        return result
    }

    /// Several kvmrun commands at once; their results in the same order.
    /// `environment` is prefixed to each (NAME=VALUE words).
    func concurrently(_ commands: [[String]], environment: String = "", timeout: Int = 900) throws -> [Result] {
        var running: [(ChildProcess, String, String)] = []
        for arguments in commands {
            serial += 1
            let out = "\(work)/out.\(serial)", err = "\(work)/err.\(serial)"
            let child = try ChildProcess(executable: "/bin/sh", arguments: [
                "-c", "\(environment.isEmpty ? "" : "export \(environment); ")exec \"$0\" \"$@\" >'\(out)' 2>'\(err)' </dev/null", E2E.binary, "--root", root,
            ] + arguments)
            running.append((child, out, err))
        }
        return running.map { child, out, err in
            let status = child.waitForExit(timeoutMilliseconds: timeout * 1000)
            if status == nil {
                child.signal(SIGKILL)
                _ = child.waitForExit(timeoutMilliseconds: 5000)
            }
            defer { unlink(out); unlink(err) }
            return Result(status: status ?? -1, stdout: E2E.readFile(out), stderr: E2E.readFile(err))
        }
    }

    /// kvmrun that must succeed; the error carries its stderr.
    @discardableResult
    func ok(_ arguments: [String], timeout: Int = 180) throws -> String {
        let result = try kvmrun(arguments, timeout: timeout)
        guard result.status == 0 else { throw RuntimeTestError("kvmrun \(arguments.joined(separator: " ")): \(result)") }
        return result.stdout
    }

    /// A busybox bundle running `args`; `environment` sets scripts/busybox-bundle's options
    /// (BUNDLE_MEMORY, BUNDLE_ANNOTATIONS, BUNDLE_NETNS, BUNDLE_READONLY, BUNDLE_TERMINAL).
    func bundle(_ name: String, _ args: [String], environment: [String: String] = [:]) throws -> String {
        let directory = "\(work)/bundle-\(name)"
        let assignments = environment.map { "\($0.key)='\($0.value)'" }.joined(separator: " ")
        let quoted = args.map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }.joined(separator: " ")
        let status = system("env \(assignments) '\(E2E.packageRoot)/scripts/busybox-bundle' '\(directory)' \(quoted)")
        guard status == 0 else { throw RuntimeTestError("scripts/busybox-bundle \(directory) failed (\(status))") }
        return directory
    }

    /// `state ID` as its fields (status, pid), or nil when the container does not exist.
    func state(_ id: String) throws -> (status: String, pid: Int32)? {
        let result = try kvmrun(["state", id])
        guard result.status == 0 else { return nil }
        let status = Self.field("status", in: result.stdout) ?? "?"
        let pid = Self.field("pid", in: result.stdout).flatMap { Int32($0) } ?? 0
        return (status, pid)
    }

    func ids() -> [String] {
        guard let listed = try? kvmrun(["list", "--quiet"]), listed.status == 0 else { return [] }
        return listed.stdout.split(separator: "\n").map(String.init).filter { !$0.isEmpty }
    }

    /// A JSON field's value as text (strings without their quotes), enough for `state`.
    static func field(_ name: String, in json: String) -> String? {
        let parts = json.split(separator: "\"\(name)\":", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2 else { return nil }
        var rest = parts[1]
        if rest.first == "\"" {
            rest = rest.dropFirst()
            return String(rest.prefix { $0 != "\"" })
        }
        return String(rest.prefix { $0 != "," && $0 != "}" })
    }

    /// The sandbox VMM processes under this root (`kvmrun vm run` with a socket below it).
    func vmmProcesses() -> [pid_t] {
        processes { $0.contains("vm\0run\0") && $0.contains(root + "/") }
    }

    /// Every kvmrun process (VMMs, relays, commands): the nested suites run one test at a time,
    /// so any there is this test's.
    func kvmrunProcesses() -> [pid_t] {
        processes { $0.hasPrefix(E2E.binary + "\0") }
    }

    private func processes(_ matching: (String) -> Bool) -> [pid_t] {
        guard let directory = opendir("/proc") else { return [] }
        defer { closedir(directory) }
        var found: [pid_t] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard let pid = pid_t(name), pid != getpid(), let cmdline = readCmdline(pid) else { continue }
            if matching(cmdline) { found.append(pid) }
        }
        return found
    }

    private func readCmdline(_ pid: pid_t) -> String? {
        // A relay's cmdline carries its JSON config, which names the root's sockets.
        guard let text = ProcessMemory.readSmall("/proc/\(pid)/cmdline"), !text.isEmpty else { return nil }
        return text
    }

    /// What a leak would show: this process's open fds, kvmrun processes of this test, mounts,
    /// network interfaces, and entries under the root's sandboxes/ and containers/.
    struct Footprint: Equatable, CustomStringConvertible {
        var fds: Int, processes: Int, mounts: Int, interfaces: Int, stateFiles: Int
        var description: String {
            "fds \(fds), kvmrun processes \(processes), mounts \(mounts), interfaces \(interfaces), state entries \(stateFiles)"
        }
    }

    func footprint() -> Footprint {
        Footprint(fds: Self.count("/proc/self/fd"), processes: kvmrunProcesses().count,
                  mounts: (ProcessMemory.readSmall("/proc/self/mountinfo") ?? "").split(separator: "\n").count,
                  interfaces: Self.count("/sys/class/net"),
                  stateFiles: Self.count(root + "/sandboxes") + Self.count(root + "/containers"))
    }

    static func count(_ path: String) -> Int {
        guard let directory = opendir(path) else { return 0 }
        defer { closedir(directory) }
        var count = 0
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != "." && name != ".." { count += 1 }
        }
        return count
    }

    /// MemTotal in KiB from a container's /proc/meminfo.
    func memTotalKiB(_ id: String) throws -> Int {
        let text = try ok(["exec", id, "grep", "MemTotal", "/proc/meminfo"])
        guard let value = text.split(separator: " ").compactMap({ Int($0) }).first else {
            throw RuntimeTestError("no MemTotal in \(text)")
        }
        return value
    }

    /// Waits until `state ID` says `status` (the relay's end is seen by the next command).
    func waitFor(_ id: String, _ status: String, seconds: Int = 30) throws -> Bool {
        for _ in 0..<(seconds * 5) {
            if try state(id)?.status == status { return true }
            usleep(200_000)
        }
        return false
    }
}

struct RuntimeTestError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

extension String {
    func replacingOccurrences(of target: String, with replacement: String) -> String {
        split(separator: target, omittingEmptySubsequences: false).joined(separator: replacement)
    }
}

extension ChildProcess {
    /// A program's stdout, run to its end (20 s at most).
    static func output(_ executable: String, _ arguments: [String]) throws -> [UInt8] {
        let child = try ChildProcess(executable: executable, arguments: arguments)
        _ = child.waitForExit(timeoutMilliseconds: 20_000)
        child.drain(timeoutMilliseconds: 2000)
        return child.stdoutText
    }
}
