@testable import Runtime
import Testing

/// The VMM command line a sandbox VM is started with: where the agent boots from decides the
/// guest device names of the container slots.
@Suite("Sandbox VMM arguments")
struct SandboxVMArgumentsTests {
    static let files = SandboxVM.paths(directory: "/run/kvmrun/s1")

    static func values(of option: String, in arguments: [String]) -> [String] {
        zip(arguments, arguments.dropFirst()).filter { $0.0 == option }.map(\.1)
    }

    @Test("agent disk: the read-only root is vda, booted with root=/dev/vda ro, slots from vdb")
    func agentDisk() throws {
        var config = SandboxVMConfig()
        config.blockSlots = 3
        config.firstImage = (path: "/images/c1.ext4", readonly: true)
        let firmware = Firmware(kernel: "/fw/vmlinux", agentRoot: .disk("/fw/agent-disk.ext4"), executable: "/bin/kvmrun")
        let (arguments, slots) = try SandboxVM.vmmArguments(config, files: Self.files, firmware: firmware)
        #expect(!arguments.contains("--initrd"))
        #expect(Self.values(of: "--disk", in: arguments) == [
            "path=/fw/agent-disk.ext4,id=agent-root,readonly=on",
            "path=/images/c1.ext4,id=slot0,readonly=on",
            "path=\(Self.files.placeholder),id=slot1",
            "path=\(Self.files.placeholder),id=slot2",
        ])
        let cmdline = try #require(Self.values(of: "--cmdline", in: arguments).first)
        #expect(cmdline.contains(" root=/dev/vda ro rootfstype=ext4 init=/init"))
        #expect(slots.map(\.guestDevice) == ["/dev/vdb", "/dev/vdc", "/dev/vdd"])
        #expect(slots.map(\.driveID) == ["slot0", "slot1", "slot2"])
        // Small pages for boot RAM by default (density), huge pages on request.
        #expect(Self.values(of: "--memory", in: arguments) == ["256M,hotplug=2048M,thp=off"])
        config.hugePages = true
        #expect(Self.values(of: "--memory", in: try SandboxVM.vmmArguments(config, files: Self.files, firmware: firmware).arguments) == ["256M,hotplug=2048M,thp=on"])
    }

    @Test("agent initramfs: --initrd, no root=, slots from vda")
    func agentInitramfs() throws {
        var config = SandboxVMConfig()
        config.blockSlots = 2
        let firmware = Firmware(kernel: "/fw/vmlinux", agentRoot: .initramfs("/fw/agent-initramfs.cpio.gz"), executable: "/bin/kvmrun")
        let (arguments, slots) = try SandboxVM.vmmArguments(config, files: Self.files, firmware: firmware)
        #expect(Self.values(of: "--initrd", in: arguments) == ["/fw/agent-initramfs.cpio.gz"])
        #expect(Self.values(of: "--disk", in: arguments).count == 2)
        #expect(try #require(Self.values(of: "--cmdline", in: arguments).first).contains("root=") == false)
        #expect(slots.map(\.guestDevice) == ["/dev/vda", "/dev/vdb"])
    }

    @Test("more slots than device letters, or a negative count, is refused")
    func tooManySlots() {
        let firmware = Firmware(kernel: "/fw/vmlinux", agentRoot: .disk("/fw/agent-disk.ext4"), executable: "/bin/kvmrun")
        for count in [26, -1] {
            var config = SandboxVMConfig()
            config.blockSlots = count
            #expect(throws: RuntimeError.self) { try SandboxVM.vmmArguments(config, files: Self.files, firmware: firmware) }
        }
        var config = SandboxVMConfig()
        config.blockSlots = 25
        #expect(throws: Never.self) { try SandboxVM.vmmArguments(config, files: Self.files, firmware: firmware) }
    }
}
