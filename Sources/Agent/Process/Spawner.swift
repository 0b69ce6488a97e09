// Swift side of the spawn shim (CSources/CSpawn): lays a SpawnRequest out as C structs,
// calls kvmrun_spawn, and reads the child's report records. Two phases:
//   `launch` (inside Reaper.launching, registry locked): clone, and in join mode read until
//            the PID record names the process;
//   `finish`: read until READY (waiting for start), an ERROR, or end-of-file (exec done).
#if canImport(Glibc)
import Glibc
#endif
import CAgent
import CSpawn
import Sys

public final class PendingSpawn: @unchecked Sendable {
    /// The process (the agent's view).
    public let pid: Int32
    /// Its pidfd (-1 when it could not be had: already reaped by PID 1's reaper).
    public let pidfd: Int32
    /// The pty master when the request asked for a terminal.
    public private(set) var console: Int32 = -1
    private let channel: Int32
    /// A failure the child reported before its pid was known (join mode: the process can
    /// fail before the intermediate has sent the PID record); `finish` throws it first.
    private var earlyError: SpawnError?
    /// A READY that came before the PID record (join mode, as for `earlyError`).
    private var earlyReady: Bool

    init(pid: Int32, pidfd: Int32, channel: Int32, earlyError: SpawnError? = nil, console: Int32 = -1, earlyReady: Bool = false) {
        self.pid = pid
        self.pidfd = pidfd
        self.channel = channel
        self.earlyError = earlyError
        self.console = console
        self.earlyReady = earlyReady
    }

    deinit {
        close(channel)
        if console >= 0 { close(console) }
    }

    public enum Outcome: Sendable, Equatable { case waitingForStart, execed }

    /// Reads records until the child waits for start, exec'd, or failed (thrown).
    public func finish() throws(SpawnError) -> Outcome {
        if let earlyError {
            self.earlyError = nil
            throw earlyError
        }
        if earlyReady {
            earlyReady = false
            return .waitingForStart
        }
        while true {
            switch try Spawner.receive(channel) {
            case .ready: return .waitingForStart
            case .end: return .execed
            case .console(let fd): console = fd
            case .pid: continue
            case .failed(let error): throw error
            }
        }
    }

    /// Lets a child that waits for start exec, then reads until it did (or failed).
    public func start() throws(SpawnError) {
        var go: UInt8 = 1
        // SAFETY: sends the one local byte.
        guard send(channel, &go, 1, Int32(MSG_NOSIGNAL)) == 1 else {
            throw SpawnError(step: "start (the process is gone)", path: "", errno: errno)
        }
        if try finish() == .waitingForStart { throw SpawnError(step: "start (unexpected READY)", path: "", errno: EPROTO) }
    }

    /// Takes ownership of the console fd (the caller closes it).
    public func takeConsole() -> Int32 {
        defer { console = -1 }
        return console
    }
}

public enum Spawner {
    enum Record {
        case ready, end, pid(Int32), console(Int32), failed(SpawnError)
    }

    static func receive(_ channel: Int32) throws(SpawnError) -> Record {
        var report = kvmrun_spawn_report()
        var passed: Int32 = -1
        let got = kvmrun_spawn_receive(channel, &report, &passed)
        if got == 0 { return .end }
        if got < 0 { throw SpawnError(step: "read spawn report", path: "", errno: errno) }
        switch report.kind {
        case Int32(KVMRUN_REPORT_READY): return .ready
        case Int32(KVMRUN_REPORT_PID): return .pid(report.pid)
        case Int32(KVMRUN_REPORT_CONSOLE): return .console(passed)
        default:
            // SAFETY: step and path are NUL-terminated by kvmrun_spawn_receive.
            let step = withUnsafeBytes(of: report.step) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
            let path = withUnsafeBytes(of: report.path) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
            return .failed(SpawnError(step: step, path: path, errno: report.err))
        }
    }

    /// Phase one: clone the process described by `request`. Returns once its pid is known.
    public static func launch(_ request: SpawnRequest) throws(SpawnError) -> PendingSpawn {
        var pair: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else {
            throw SpawnError(step: "socketpair", path: "", errno: errno)
        }
        let parentEnd = pair[0], childEnd = pair[1]
        let arena = CArena()
        var spawn = layout(request, arena: arena, reportFD: childEnd)
        var pidfd: Int32 = -1
        let pid = kvmrun_spawn(&spawn, &pidfd)
        let cloneErrno = errno
        close(childEnd)
        if pid < 0 {
            close(parentEnd)
            throw SpawnError(step: "clone3", path: request.args.first ?? "", errno: cloneErrno)
        }
        guard request.joinNamespaces != nil else {
            return PendingSpawn(pid: pid, pidfd: pidfd, channel: parentEnd)
        }
        // Join mode: `pid` is the intermediate child; the process's pid comes in a record.
        defer {
            reapIntermediate(pidfd)
            close(pidfd)
        }
        // The process and the intermediate write to the same channel, so the process's own
        // records (its pty master, READY, a failure) can come before the intermediate's PID
        // record: keep them for `finish`. (Dropping an early console record left a terminal
        // exec that ran at once without its output stream.)
        var early: SpawnError?
        var console: Int32 = -1, ready = false
        while true {
            let record: Record
            do {
                record = try receive(parentEnd)
            } catch {
                if console >= 0 { close(console) }
                close(parentEnd)
                throw error
            }
            switch record {
            case .pid(let child):
                // Our child (CLONE_PARENT): its pid stays ours until reaped, so this pidfd is its.
                let childFD = kvmrun_pidfd_open(child)
                return PendingSpawn(pid: child, pidfd: childFD, channel: parentEnd, earlyError: early, console: console, earlyReady: ready)
            case .failed(let error):
                early = early ?? error
            case .end:
                if console >= 0 { close(console) }
                close(parentEnd)
                throw early ?? SpawnError(step: "exec in container (no process was created)", path: "", errno: EPROTO)
            case .console(let fd):
                if console >= 0 { close(console) }
                console = fd
            case .ready:
                ready = true
            }
        }
    }

    private static func reapIntermediate(_ pidfd: Int32) {
        var poll = pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0)
        _ = Glibc.poll(&poll, 1, 5000)
        var status: Int32 = 0
        _ = kvmrun_pidfd_reap(pidfd, &status)   // ECHILD when PID 1's reaper got it first
    }

    private static func layout(_ request: SpawnRequest, arena: CArena, reportFD: Int32) -> kvmrun_spawn {
        var spawn = kvmrun_spawn()
        spawn.clone_flags = request.cloneFlags
        spawn.cgroup_fd = request.cgroupFD
        let ns = request.joinNamespaces ?? []
        func nsFD(_ index: Int) -> Int32 { index < ns.count ? ns[index] : -1 }
        spawn.ns_fds = (nsFD(0), nsFD(1), nsFD(2), nsFD(3), nsFD(4), nsFD(5))
        spawn.join = request.joinNamespaces == nil ? 0 : 1
        spawn.rootfs = arena.string(request.rootfs)
        spawn.rootfs_readonly = request.rootfsReadonly ? 1 : 0
        spawn.rootfs_propagation = request.rootfsPropagation
        spawn.mounts = arena.array(request.mounts.map { mount in
            kvmrun_mount(source: arena.string(mount.source), target: arena.string(mount.target), fstype: arena.string(mount.fstype),
                         data: arena.string(mount.data), flags: mount.flags, propagation: mount.propagation)
        })
        spawn.mount_count = request.mounts.count
        spawn.devices = arena.array(request.devices.map { device in
            kvmrun_device(path: arena.string(device.path), mode: device.mode, dev: kvmrun_makedev(device.major, device.minor),
                          uid: device.uid, gid: device.gid)
        })
        spawn.device_count = request.devices.count
        spawn.default_devices = request.defaultDevices ? 1 : 0
        spawn.masked_paths = arena.strings(request.maskedPaths)
        spawn.masked_count = request.maskedPaths.count
        spawn.readonly_paths = arena.strings(request.readonlyPaths)
        spawn.readonly_count = request.readonlyPaths.count
        spawn.hostname = arena.string(request.hostname)
        spawn.sysctl_paths = arena.strings(request.sysctls.map(\.path))
        spawn.sysctl_values = arena.strings(request.sysctls.map(\.value))
        spawn.sysctl_count = request.sysctls.count
        spawn.rlimits = arena.array(request.rlimits.map { kvmrun_rlimit(resource: $0.resource, soft: $0.soft, hard: $0.hard) })
        spawn.rlimit_count = request.rlimits.count
        spawn.set_oom_score_adj = request.oomScoreAdj == nil ? 0 : 1
        spawn.oom_score_adj = request.oomScoreAdj ?? 0
        spawn.uid = request.uid
        spawn.gid = request.gid
        spawn.groups = arena.array(request.groups)
        spawn.group_count = request.groups.count
        if let capabilities = request.capabilities {
            spawn.set_capabilities = 1
            spawn.cap_bounding = capabilities.bounding
            spawn.cap_effective = capabilities.effective
            spawn.cap_permitted = capabilities.permitted
            spawn.cap_inheritable = capabilities.inheritable
            spawn.cap_ambient = capabilities.ambient
        }
        spawn.cap_last = Int32(lastCapability)
        spawn.no_new_privileges = request.noNewPrivileges ? 1 : 0
        spawn.cwd = arena.string(request.cwd)
        spawn.argv = arena.strings(request.args)
        spawn.envp = arena.strings(request.env)
        spawn.path_env = arena.string(request.pathVariable)
        switch request.stdio {
        case .fds(let stdin, let stdout, let stderr):
            spawn.stdin_fd = stdin
            spawn.stdout_fd = stdout
            spawn.stderr_fd = stderr
        case .terminal(let rows, let columns):
            spawn.terminal = 1
            spawn.rows = rows
            spawn.columns = columns
        }
        spawn.report_fd = reportFD
        spawn.wait_for_start = request.waitForStart ? 1 : 0
        return spawn
    }

    /// /proc/sys/kernel/cap_last_cap (40 on 6.x kernels).
    static let lastCapability: Int = {
        Files.readText("/proc/sys/kernel/cap_last_cap").flatMap { Int($0.trimmingCharacters()) } ?? 40
    }()
}

extension String {
    /// Without leading and trailing ASCII whitespace (no Foundation in the agent).
    public func trimmingCharacters() -> String {
        let bytes = Array(utf8)
        var start = 0, end = bytes.count
        while start < end, bytes[start] == 32 || bytes[start] == 10 || bytes[start] == 9 || bytes[start] == 13 { start += 1 }
        while end > start, bytes[end - 1] == 32 || bytes[end - 1] == 10 || bytes[end - 1] == 9 || bytes[end - 1] == 13 { end -= 1 }
        return String(decoding: bytes[start..<end], as: UTF8.self)
    }
}
