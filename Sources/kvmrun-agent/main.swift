// kvmrun-agent: the guest agent, PID 1 of the agent initramfs. Serves grpc.AgentService and
// grpc.Health (ttRPC) on vsock port 1024; logs to the console.
//
//   kvmrun-agent [--vsock-port N] [--unix PATH] [--cgroup-root PATH|none] [--cgroup-parent NAME] [--exit-with-parent] [--debug]
//
// As PID 1 it first leaves the initramfs and mounts the kernel file systems (GuestInit), and
// reaps every child. Elsewhere (tests on a host) it reaps only its own processes; --unix
// serves a Unix socket instead of vsock.
#if canImport(Glibc)
import Glibc
#endif
import Agent
import AgentServer
import CAgent
import CSpawn
import Sys

let isInit = getpid() == 1
if isInit {
    // Before any thread exists: every thread inherits the blocked SIGCHLD, so only the
    // reaper's signalfd sees it.
    Reaper.blockChildSignal()
    GuestInit.setUp()
} else {
    signal(SIGPIPE, SIG_IGN)
}

var port: UInt32 = 1024
var unixPath: String?
var cgroupRoot: String? = Files.exists("/sys/fs/cgroup/cgroup.subtree_control") ? "/sys/fs/cgroup" : nil
var cgroupParent = "kvmrun"
var arguments = CommandLine.arguments.dropFirst().makeIterator()
while let argument = arguments.next() {
    switch argument {
    case "--vsock-port":
        guard let value = arguments.next().flatMap({ UInt32($0) }) else { Log.error("--vsock-port needs a number"); exit(64) }
        port = value
    case "--unix":
        unixPath = arguments.next()
    case "--cgroup-root":
        let value = arguments.next() ?? "none"
        cgroupRoot = value == "none" ? nil : value
    case "--cgroup-parent":
        cgroupParent = arguments.next() ?? cgroupParent
    case "--debug":
        Log.debugEnabled = true
    case "--exit-with-parent":
        // Tests on a host: the agent goes when the test process does (its pidfd becomes
        // readable when the whole process is gone, not just the thread that spawned us).
        let parent = kvmrun_pidfd_open(getppid())
        if parent >= 0 {
            try? startThread("parent watch") {
                var watch = pollfd(fd: parent, events: Int16(POLLIN), revents: 0)
                while poll(&watch, 1, -1) < 0, errno == EINTR {}
                exit(0)
            }
        }
    default:
        Log.error("unknown argument \(argument) (usage: kvmrun-agent [--vsock-port N] [--unix PATH] [--cgroup-root PATH|none] [--cgroup-parent NAME] [--exit-with-parent] [--debug])")
        if !isInit { exit(64) }
    }
}

let sandbox: Sandbox
do {
    let reaper = try Reaper(mode: isInit ? .everyChild : .registered)
    var configuration = Sandbox.Configuration(cgroupRoot: cgroupRoot)
    configuration.cgroupParent = cgroupParent
    sandbox = try Sandbox(configuration: configuration, reaper: reaper)
} catch {
    Log.error("start-up: \(error)")
    if isInit { while true { pause() } }
    exit(1)
}

let service = AgentService(sandbox: sandbox, onDestroy: {
    guard isInit else { return }
    // After the DestroySandbox answer has gone out: end the VM (the VMM exits on the reset).
    try? startThread("reboot") {
        usleep(100_000)
        sync()
        Log.info("sandbox destroyed: rebooting (the VM ends)")
        _ = reboot(KVMRUN_RB_AUTOBOOT)
    }
})
// Every container and exec'd process holds one connection through its host relay (WaitProcess
// and its stdio) for as long as it runs, and CLI commands come on top: 8 would cap a sandbox at
// a handful of processes. Each connection costs a reader thread whose stack is touched lightly.
var serverLimits = TTRPCServer.Limits()
serverLimits.maxConnections = 256
let server = TTRPCServer(limits: serverLimits, log: { line in Log.info(line) })
service.register(on: server)

/// Opens the listening socket: vsock, or a Unix socket for tests.
func listen(port: UInt32, unixPath: String?) -> Int32 {
    if let unixPath {
        unlink(unixPath)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        let bound = fd >= 0 && (try? withUnixAddress(unixPath, { address, length in bind(fd, address, length) })) == 0
        guard bound, Glibc.listen(fd, 16) == 0 else {
            if fd >= 0 { close(fd) }
            return -1
        }
        return fd
    }
    return kvmrun_vsock_listen(port, 16)
}

while true {
    let listener = listen(port: port, unixPath: unixPath)
    guard listener >= 0 else {
        Log.error("listen on \(unixPath ?? "vsock port \(port)"): errno \(errno); retrying in 1 s")
        sleep(1)
        continue
    }
    Log.info("ready: \(unixPath ?? "vsock port \(port)"), pid \(getpid()), VmRSS \(GuestInfo.agentRSS) KiB (anonymous \(GuestInfo.agentAnonymousRSS) KiB), guest used memory \(GuestInfo.usedMemory) KiB")
    do {
        try server.serve(listener: FileDescriptor(listener))
    } catch {
        Log.error("serving: \(error); listening again")
    }
}
