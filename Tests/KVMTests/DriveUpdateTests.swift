#if canImport(Glibc)
import Glibc
#endif
import Testing
import Virtio
@testable import VMM

/// Drives on a machine that is built (real /dev/kvm, the firmware kernel loaded) but not run:
/// attach order, the guest command line, and swapping a drive's backing file as the control API
/// does.
@Suite("virtio-blk drives on a machine", .serialized,
       .enabled(if: access(FirmwareKernel.vmlinux, R_OK) == 0, "needs firmware/out/vmlinux (make firmware)"))
struct DriveUpdateTests {

    static func image(_ name: String, sectors: Int) -> String {
        let path = "/tmp/kvmrun-kvmtest-\(getpid())-\(name)"
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        _ = ftruncate(fd, off_t(sectors * 512))
        close(fd)
        return path
    }

    func machine(_ disks: [DiskOption]) throws -> Machine {
        var config = VMConfig(kernelPath: FirmwareKernel.vmlinux, memorySize: 64 << 20, console: .none)
        config.devices.disks = disks
        return try Machine(config: config, logger: .discarding)
    }

    func configGeneration(_ transport: MMIOTransport) -> UInt32 {
        var value: UInt32 = 0
        withUnsafeMutableBytes(of: &value) { transport.read(offset: UInt64(MMIOTransport.Register.configGeneration), data: $0) }
        return value
    }

    @Test("two drives in order, announced on the command line; updateDrive swaps one and bumps its config generation")
    func update() throws {
        let first = DriveUpdateTests.image("first", sectors: 16)
        let second = DriveUpdateTests.image("second", sectors: 32)
        let bigger = DriveUpdateTests.image("bigger", sectors: 4096)
        defer { for path in [first, second, bigger] { unlink(path) } }
        let machine = try machine([DiskOption(path: first, id: "root"),
                                   DiskOption(path: second, readOnly: true, id: "data")])
        let drives = machine.blockDrives
        #expect(drives.map(\.device.id) == ["root", "data"])
        #expect(drives.map(\.device.capacitySectors) == [16, 32])
        #expect(drives[1].device.readOnly)
        #expect(machine.virtio.commandLine.split(separator: " ").count == 3, "virtio-rng and two disks")

        let generation = configGeneration(drives[0].transport)
        try machine.updateDrive(id: "root", path: bigger)
        #expect(drives[0].device.capacitySectors == 4096)
        #expect(drives[0].device.path == bigger)
        #expect(configGeneration(drives[0].transport) != generation)
        #expect(drives[1].device.capacitySectors == 32, "the other drive is untouched")

        #expect {
            try machine.updateDrive(id: "nope", path: bigger)
        } throws: { error in
            "\(error)" == "no drive with id 'nope' (drives: root, data)"
        }
        #expect {
            try machine.updateDrive(id: "root", path: "/nonexistent/new.img")
        } throws: { error in
            "\(error)".contains("drive root") && "\(error)".contains("/nonexistent/new.img")
        }
        #expect(drives[0].device.path == bigger, "a failed update keeps the current file")
    }

    @Test("an image that cannot be opened stops the machine before boot, naming the drive and the path")
    func missingImage() throws {
        #expect {
            _ = try machine([DiskOption(path: "/nonexistent/disk.img", id: "boot")])
        } throws: { error in
            "\(error)".contains("--disk id=boot") && "\(error)".contains("/nonexistent/disk.img")
        }
    }
}

enum FirmwareKernel {
    static let vmlinux: String = {
        var path = #filePath
        for _ in 0..<3 { path = String(path[..<path.lastIndex(of: "/")!]) }
        return path + "/firmware/out/vmlinux"
    }()
}
