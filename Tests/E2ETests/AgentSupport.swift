#if canImport(Glibc)
import Glibc
#endif
import AgentClient
import AgentHost
import Harness
import Sys
import Testing

/// A microVM running the guest agent (the agent initramfs), reached over the VMM's hybrid
/// vsock with the real host-side client; its container rootfs is a copy of the busybox ext4
/// image (firmware/out/container-rootfs.ext4) as /dev/vda.
final class AgentVM {
    static var initramfs: String { E2E.firmware + "/agent-initramfs.cpio.gz" }
    static var rootfsImage: String { E2E.firmware + "/container-rootfs.ext4" }
    static var firmwareBuilt: Bool { access(initramfs, R_OK) == 0 && access(rootfsImage, R_OK) == 0 }

    let vmm: ChildProcess
    let socket: String
    let console: String
    let disk: String
    let driver: AgentDriver

    /// Boots the VM and waits until the agent answers Health.Check.
    /// `cmdline` is appended to the kernel command line.
    init(name: String, memory: String = "256M", cpus: Int = 1, cmdline: String = "", extra: [String] = []) throws {
        socket = E2E.temporaryPath("\(name).vsock")
        console = E2E.temporaryPath("\(name).console")
        disk = E2E.temporaryPath("\(name).ext4")
        unlink(socket)
        try DiskImage.copy(AgentVM.rootfsImage, to: disk)
        vmm = try ChildProcess(executable: E2E.binary, arguments: [
            "vm", "run", "--kernel", E2E.vmlinux, "--initrd", AgentVM.initramfs, "--cpus", String(cpus), "--memory", memory,
            "--cmdline", "console=ttyS0 reboot=k panic=-1 quiet" + cmdline, "--console", "file:\(console)",
            "--vsock", "cid=3,uds=\(socket)", "--disk", "path=\(disk)",
        ] + extra)
        var connected: AgentDriver?
        var lastError = ""
        let deadline = MonotonicClock.now + 120 * 1_000_000_000
        while connected == nil, MonotonicClock.now < deadline {
            if let status = vmm.waitForExit(timeoutMilliseconds: 0) {
                throw AgentDriverError("kvmrun exited \(status) before the agent answered; console:\n\(E2E.readFile(console))")
            }
            if access(socket, F_OK) == 0 {
                do {
                    let client = try AgentClient.connect(hybridVsock: socket)
                    let driver = AgentDriver(client: client)
                    if try driver.client.check(timeout: .after(.seconds(10))).status == .serving { connected = driver }
                } catch {
                    lastError = "\(error)"
                }
            }
            if connected == nil { usleep(200_000) }
        }
        guard let connected else {
            vmm.signal(SIGKILL)
            _ = vmm.waitForExit(timeoutMilliseconds: 5000)
            throw AgentDriverError("the agent did not answer within 120 s (last: \(lastError)); console:\n\(E2E.readFile(console))")
        }
        driver = connected
    }

    /// Ends the VM: DestroySandbox makes the agent reboot the guest, which ends kvmrun with 0.
    /// Returns kvmrun's exit status (killed after 60 s).
    @discardableResult
    func destroy() -> Int32? {
        try? driver.client.destroySandbox()
        driver.client.close()
        let status = vmm.waitForExit(timeoutMilliseconds: 60_000)
        if status == nil {
            vmm.signal(SIGKILL)
            _ = vmm.waitForExit(timeoutMilliseconds: 5000)
        }
        unlink(disk)
        return status
    }

    deinit {
        if vmm.waitForExit(timeoutMilliseconds: 0) == nil {
            vmm.signal(SIGKILL)
            _ = vmm.waitForExit(timeoutMilliseconds: 5000)
        }
        unlink(disk)
        unlink(socket)
    }

    var consoleText: String { E2E.readFile(console) }

    /// A container from the busybox image on /dev/vda, mounted where Kata's runtime would.
    func createContainer(_ id: String, _ args: [String], options: ContainerSpecs.Options = ContainerSpecs.Options()) throws {
        let mountPoint = "/run/kata-containers/\(id)/rootfs"
        try driver.createContainer(id, spec: ContainerSpecs.spec(rootfs: mountPoint, args: args, options: options),
                                   storages: [ContainerSpecs.blockStorage(device: "/dev/vda", mountPoint: mountPoint)])
    }
}
