#if canImport(Glibc)
import Glibc
#endif
import AgentClient
import Logging
import Sys

/// What a sandbox VM is booted with.
public struct SandboxVMConfig: Sendable {
    /// vCPUs online at boot.
    public var vcpus: Int = 1
    /// vCPUs the VM is made with: those above `vcpus` stay offline (the guest's `maxcpus=`)
    /// until containers' CPU limits need them (the agent's OnlineCPUMem). At most 8, at most
    /// the host's online CPUs.
    public var maxVcpus: Int = min(8, max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN))))
    public var baseMemoryMiB: UInt64 = 256
    /// The virtio-mem region containers' memory is hot-added from (a multiple of 128 MiB).
    public var hotplugRegionMiB: UInt64 = 2048
    /// Boot RAM on transparent huge pages. Off: a sandbox's host memory is the 4 KiB pages its
    /// guest touched, not every 2 MiB page it touched a byte of (4 MiB less for an idle
    /// sandbox; README "Runtime figures"), at some TLB cost to memory-hungry workloads.
    public var hugePages = false
    /// Pre-created virtio-blk slots for container rootfs images.
    public var blockSlots: Int = 4
    /// The image for slot 0 at boot (the first container's rootfs), read-only or not.
    public var firstImage: (path: String, readonly: Bool)?
    public var network: SandboxNetwork?
    public var bootTimeoutSeconds: Int = 120

    public init() {}
}

/// Starting and stopping a sandbox's VMM process (`kvmrun vm run` in its own session, owning
/// the VM, its control API socket and its hybrid-vsock socket) and reaching its agent.
public enum SandboxVM {
    /// Paths of a sandbox's VMM files in `directory` (the vsock socket path at most 96 bytes: the VMM appends "_PORT" for guest-initiated connections).
    public static func paths(directory: String) -> (api: String, vsock: String, console: String, log: String, placeholder: String) {
        (directory + "/api.sock", directory + "/vsock.sock", directory + "/console.log", directory + "/vmm.log",
         directory + "/empty.img")
    }

    /// Boots the VM and waits until its agent answers Health.Check. On failure the VMM is killed
    /// and the error carries the end of its console and log.
    public static func boot(
        _ config: SandboxVMConfig, directory: String, firmware: Firmware, logger: Logger
    ) throws(RuntimeError) -> (vmm: ProcessIdentity, client: AgentClient, slots: [BlockSlot]) {
        let files = paths(directory: directory)
        guard files.vsock.utf8.count <= 96 else {   // the VMM needs room for "_PORT" in sockaddr_un
            throw .invalidInput("sandbox directory \(directory) is too long for a Unix socket path (use a shorter --root)")
        }
        let placeholder = open(files.placeholder, O_WRONLY | O_CREAT | O_CLOEXEC, 0o600)
        guard placeholder >= 0 else { throw .failed(step: "create \(files.placeholder)", reason: errnoText()) }
        close(placeholder)
        let (arguments, slots) = try vmmArguments(config, files: files, firmware: firmware)
        logger.debug("starting the sandbox VMM", metadata: ["argv": "\(arguments.joined(separator: " "))"])
        let pid = try spawnDetached(firmware.executable, arguments, logPath: files.log)
        guard let identity = ProcessIdentity.of(pid) else {
            throw .failed(step: "boot the sandbox VM", reason: "the VMM (pid \(pid)) exited at once: \(tail(files.log))")
        }
        do {
            let client = try waitForAgent(socket: files.vsock, vmm: identity, timeoutSeconds: config.bootTimeoutSeconds)
            return (identity, client, slots)
        } catch {
            kill(identity.pid, SIGKILL)
            throw .failed(step: "boot the sandbox VM", reason: "\(error); console: \(tail(files.console)); vmm: \(tail(files.log))")
        }
    }

    /// The VMM's command line for `config` and the block slots it makes, in guest device order.
    static func vmmArguments(
        _ config: SandboxVMConfig, files: (api: String, vsock: String, console: String, log: String, placeholder: String),
        firmware: Firmware
    ) throws(RuntimeError) -> (arguments: [String], slots: [BlockSlot]) {
        var slots: [BlockSlot] = []
        var cmdline = "console=ttyS0 reboot=k panic=-1 quiet" + (config.maxVcpus > config.vcpus ? " maxcpus=\(config.vcpus)" : "")
        var arguments = ["vm", "run", "--kernel", firmware.kernel]
        // Guest block devices are named in the order the disks are given (virtio-mmio probe
        // order): the agent's root disk first (vda), then the container slots.
        var firstSlotDevice = 0
        switch firmware.agentRoot {
        case .disk(let path):
            arguments += ["--disk", "path=\(path),id=agent-root,readonly=on"]
            cmdline += " root=/dev/vda ro rootfstype=ext4 init=/init"
            firstSlotDevice = 1
        case .initramfs(let path):
            arguments += ["--initrd", path]
        }
        arguments += [
            "--cpus", String(max(config.vcpus, config.maxVcpus)),
            "--memory", "\(config.baseMemoryMiB)M,hotplug=\(config.hotplugRegionMiB)M,thp=\(config.hugePages ? "on" : "off")",
            "--cmdline", cmdline,
            "--console", "file:\(files.console)",
            "--vsock", "cid=3,uds=\(files.vsock)", "--api-socket", files.api,
        ]
        guard config.blockSlots >= 0, firstSlotDevice + config.blockSlots <= 26 else {
            throw .invalidInput("\(config.blockSlots) block slots: a sandbox VM has at most \(26 - firstSlotDevice)")
        }
        for index in 0..<config.blockSlots {
            let driveID = "slot\(index)"
            var disk = "path=\(files.placeholder),id=\(driveID)"
            if index == 0, let first = config.firstImage {
                disk = "path=\(first.path),id=\(driveID)" + (first.readonly ? ",readonly=on" : "")
            }
            arguments += ["--disk", disk]
            let letter = String(UnicodeScalar(UInt8(0x61 + firstSlotDevice + index)))
            slots.append(BlockSlot(index: index, driveID: driveID, guestDevice: "/dev/vd" + letter, containerID: nil))
        }
        if let network = config.network {
            arguments += ["--netns", network.netnsPath, "--net", "tap=\(network.tapName),mac=\(network.interface.mac)"]
        }
        return (arguments, slots)
    }

    /// Connects to the agent of a running sandbox VM.
    public static func connect(socket: String, callTimeout: Duration = AgentClient.standardTimeout) throws(RuntimeError) -> AgentClient {
        do { return try AgentClient.connect(hybridVsock: socket, defaultTimeout: callTimeout) } catch {
            throw .failed(step: "connect to the sandbox's agent at \(socket)", reason: "\(error)")
        }
    }

    static func waitForAgent(socket: String, vmm: ProcessIdentity, timeoutSeconds: Int) throws(RuntimeError) -> AgentClient {
        let deadline = MonotonicClock.now + Int64(timeoutSeconds) * 1_000_000_000
        var lastError = "the VMM's vsock socket never appeared"
        while MonotonicClock.now < deadline {
            guard vmm.isAlive else { throw .failed(step: "wait for the agent", reason: "the VMM exited") }
            if access(socket, F_OK) == 0 {
                do {
                    let client = try AgentClient.connect(hybridVsock: socket, connectTimeout: .seconds(5))
                    if try client.check(timeout: .after(.seconds(10))).status == .serving { return client }
                    client.close()
                } catch {
                    lastError = "\(error)"
                }
            }
            usleep(50_000)
        }
        throw .failed(step: "wait for the agent", reason: "no answer within \(timeoutSeconds) s (last: \(lastError))")
    }

    /// Stops the VM: asks the agent to end the sandbox (the guest reboots, the VMM exits 0), then
    /// the control API, then SIGTERM, then SIGKILL, each with a grace period. Returns how it ended.
    @discardableResult
    public static func stop(vmm: ProcessIdentity, apiSocket: String, vsockSocket: String, logger: Logger) -> String {
        guard vmm.isAlive else { return "already gone" }
        if let client = try? AgentClient.connect(hybridVsock: vsockSocket, connectTimeout: .seconds(2)) {
            try? client.destroySandbox(timeout: .after(.seconds(5)))
            client.close()
            if waitGone(vmm, milliseconds: 10_000) { return "destroyed by the agent" }
        }
        if (try? VMMControl(socket: apiSocket).shutdown()) != nil, waitGone(vmm, milliseconds: 5000) { return "shut down by the API" }
        kill(vmm.pid, SIGTERM)
        if waitGone(vmm, milliseconds: 5000) { return "terminated" }
        logger.warning("the sandbox VMM did not stop; killing it", metadata: ["pid": "\(vmm.pid)"])
        kill(vmm.pid, SIGKILL)
        _ = waitGone(vmm, milliseconds: 5000)
        return "killed"
    }

    static func waitGone(_ process: ProcessIdentity, milliseconds: Int) -> Bool {
        var waited = 0
        while process.isAlive {
            if waited >= milliseconds { return false }
            usleep(20_000)
            waited += 20
        }
        return true
    }

    /// What became of a sandbox's VMM, for errors about a lost agent connection: whether it
    /// still runs (waiting a moment for one that is exiting), and the end of its log and console.
    static func fate(of sandbox: SandboxRecord) -> String {
        // The sandbox's files sit beside its API socket.
        let logPath = String(sandbox.apiSocket.reversed().drop(while: { $0 != "/" }).reversed()) + "vmm.log"
        guard let vmm = sandbox.vmm else { return "the sandbox has no VMM on record" }
        let alive = !waitGone(vmm, milliseconds: 1000)
        return (alive ? "the VMM (pid \(vmm.pid)) still runs" : "the VMM (pid \(vmm.pid)) has exited")
            + "; vmm: \(tail(logPath)); console: \(tail(sandbox.consoleLog))"
    }

    static func tail(_ path: String) -> String {
        guard let bytes = AtomicFile.readBytes(path), !bytes.isEmpty else { return "(empty)" }
        return String(decoding: bytes.suffix(1500), as: UTF8.self)
    }
}
