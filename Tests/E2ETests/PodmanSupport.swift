#if canImport(Glibc)
import Glibc
#endif
import Harness
import Sys
import Testing

/// podman as a real client of kvmrun: `podman --runtime <kvmrun>` with a configuration for a host
/// without systemd, journald or container networking (the nested test host): cgroupfs, events to a
/// file, `--network none` by default, all state on tmpfs under `Podman.state`, and a busybox image
/// imported from busybox-static (no registry). Facts behind the settings: notes/podman-calls.md.
enum Podman {
    static let executable = "/usr/bin/podman"
    static var available: Bool { access(executable, X_OK) == 0 && access("/usr/bin/conmon", X_OK) == 0 }
    static let image = "localhost/busybox:kvmrun"
    /// /run is a tmpfs in the nested host: podman's overlay storage cannot sit on its overlay root.
    static let state = "/run/kvmrun-e2e-podman"

    static let containersConf = """
        [containers]
        netns = "none"
        log_driver = "k8s-file"
        default_ulimits = ["nofile=4096:4096", "nproc=32768:32768"]

        [engine]
        cgroup_manager = "cgroupfs"
        events_logger = "file"
        tmp_dir = "\(state)/libpod"
        image_copy_tmp_dir = "storage"
        runtime_supports_json = ["crun", "runc", "kata", "runsc", "krun", "kvmrun"]

        """

    static let storageConf = """
        [storage]
        driver = "overlay"
        runroot = "\(state)/storage-run"
        graphroot = "\(state)/storage"

        [storage.options.overlay]
        mountopt = "nodev"

        """

    /// The environment every podman command gets (before the test's own).
    static var exports: String {
        "export CONTAINERS_CONF=\(sq(state + "/containers.conf")) CONTAINERS_STORAGE_CONF=\(sq(state + "/storage.conf")) TMPDIR=/tmp; "
    }

    /// Set-up, once per test process: the two configuration files and the image. nil when ready,
    /// else what failed.
    static let setUpFailure: String? = {
        _ = mkdir(state, 0o755)
        E2E.writeFile(state + "/containers.conf", Array(containersConf.utf8))
        E2E.writeFile(state + "/storage.conf", Array(storageConf.utf8))
        // A rootfs of busybox-static and its applet links, imported as an image.
        let script = """
            set -e
            podman image exists \(image) && exit 0
            bb=$(command -v busybox)
            root=$(mktemp -d /tmp/kvmrun-e2e-podman-rootfs.XXXXXX)
            trap 'rm -rf "$root" "$root.tar"' EXIT
            mkdir -p "$root/bin" "$root/etc" "$root/proc" "$root/sys" "$root/dev" "$root/tmp" "$root/root"
            cp "$bb" "$root/bin/busybox"
            chroot "$root" /bin/busybox --install -s /bin
            echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
            echo 'root:x:0:' >"$root/etc/group"
            tar -C "$root" -cf "$root.tar" .
            podman import --quiet --change 'CMD ["/bin/sh"]' "$root.tar" \(image) >/dev/null
            """
        guard let result = try? shell(exports + script, timeout: 600) else { return "cannot start /bin/sh" }
        return result.status == 0 ? nil : "importing \(image) failed (\(result.status)): \(result.stderr)"
    }()

    /// `podman --runtime <kvmrun> ARGUMENTS`, with `stdin` piped in when given.
    static func run(_ arguments: [String], stdin: String? = nil, timeout: Int = 300) throws -> E2E.Result {
        var command = commandLine(arguments)
        if let stdin { command = "printf '%s' \(sq(stdin)) | " + command }
        return try shell(exports + command, timeout: timeout)
    }

    /// As `run`, with a pty as podman's stdin/stdout/stderr (script(1)); stdin is held open with
    /// no input (a FIFO opened read-write), as a terminal nobody types into: podman with `-i` and
    /// a stdin at end of file does not return.
    static func runInTerminal(_ arguments: [String], timeout: Int = 300) throws -> E2E.Result {
        let fifo = E2E.temporaryPath("podman-tty-\(MonotonicClock.now)")
        let script = "mkfifo \(sq(fifo)); trap \"rm -f \(sq(fifo))\" EXIT; "
            + "script -qec \(sq(commandLine(arguments))) /dev/null <>\(sq(fifo))"
        return try shell(exports + script, timeout: timeout)
    }

    /// `podman inspect --format FORMAT NAME`, trimmed; "" when podman fails.
    static func inspect(_ name: String, _ format: String) -> String {
        guard let result = try? run(["inspect", "--format", format, name]), result.status == 0 else { return "" }
        return trimmed(result.stdout)
    }

    /// Polls `condition` every half second until it holds or `seconds` pass.
    static func waitUntil(seconds: Int, _ condition: () -> Bool) -> Bool {
        for _ in 0..<(seconds * 2) {
            if condition() { return true }
            usleep(500_000)
        }
        return condition()
    }

    /// Whether any process's command line mentions `text` (a container ID): kvmrun leaves none.
    static func processMentioning(_ text: String) -> String? {
        guard let directory = opendir("/proc") else { return nil }
        defer { closedir(directory) }
        while let entry = readdir(directory) {
            // SAFETY: reads the copy of d_name (a fixed 256-byte array) up to its NUL, within it.
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard let pid = Int32(name), pid != getpid() else { continue }
            let commandLine = String(E2E.readFile("/proc/\(pid)/cmdline").map { $0 == "\0" ? " " : $0 })
            if commandLine.contains(text) { return "\(pid): \(commandLine)" }
        }
        return nil
    }

    /// Whether a host process `pid` exists.
    static func alive(_ pid: Int32) -> Bool { pid > 0 && (kill(pid, 0) == 0 || errno == EPERM) }

    private static func commandLine(_ arguments: [String]) -> String {
        ([executable, "--runtime", E2E.binary] + arguments).map(sq).joined(separator: " ")
    }

    private static func shell(_ script: String, timeout: Int) throws -> E2E.Result {
        let child = try ChildProcess(executable: "/bin/sh", arguments: ["-c", script])
        let status = child.waitForExit(timeoutMilliseconds: timeout * 1000)
        if status == nil {
            child.signal(SIGKILL)
            _ = child.waitForExit(timeoutMilliseconds: 5000)
        }
        child.drain(timeoutMilliseconds: 2000)
        let result = E2E.Result(status: status ?? -1, stdout: String(decoding: child.stdoutText, as: UTF8.self),
                                stderr: String(decoding: child.stderrText, as: UTF8.self))
        if status == nil { Issue.record("timed out after \(timeout) s: \(script); stderr: \(result.stderr)") }
        return result
    }

    /// POSIX single-quoted form.
    static func sq(_ text: String) -> String {
        "'" + text.split(separator: "'", omittingEmptySubsequences: false).joined(separator: "'\\''") + "'"
    }

    /// `text` without leading and trailing white space.
    static func trimmed(_ text: String) -> String {
        String(text.drop { $0.isWhitespace }.reversed().drop { $0.isWhitespace }.reversed())
    }

    /// The first decimal number in `text` after `label` (e.g. "MemTotal:" in /proc/meminfo).
    static func number(after label: String, in text: String) -> Int? {
        guard let line = text.split(separator: "\n").first(where: { $0.contains(label) }) else { return nil }
        return line.split(separator: " ").lazy.compactMap { Int($0) }.first
    }
}
