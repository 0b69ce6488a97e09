#if canImport(Glibc)
import Glibc
#endif
import Memory
import Logging
import Testing
@testable import VMM

/// firmware/out of this package (`make -C firmware`): the guest kernel and test initramfs.
let firmware: String = {
    var path = #filePath
    for _ in 0..<3 { path = String(path[..<path.lastIndex(of: "/")!]) }
    return path + "/firmware/out"
}()

private let bootsEnabled = getenv("KVMRUN_E2E").map { String(cString: $0) == "1" } == true
    && access(firmware + "/vmlinux", R_OK) == 0 && access(firmware + "/initramfs.cpio.gz", R_OK) == 0

/// virtio-mem resized while a real guest runs, driven through `Machine.setHotplugTarget` (what
/// the control API calls) on an in-process Machine, with the guest script
/// firmware/initramfs/tests/mem_resize.sh reporting each phase on the console. Needs a
/// hardware-style KVM: run it in the nested host with KVMRUN_E2E=1, like the E2E suites.
@Suite("virtio-mem resize at runtime", .serialized,
       .enabled(if: bootsEnabled, "needs a hardware-style KVM and firmware/out (KVMRUN_E2E=1 in the nested host)"))
struct MemResizeBootTests {
    static let base = GuestAddress(4 * .gib)
    static let region: UInt64 = 1 * .gib

    @Test("grow at boot, shrink to 128 MiB (memory returned to the host), grow to 768 MiB")
    func resize() throws {
        let console = "/tmp/kvmrun-kvmtests-\(getpid())-mem-console.log"
        defer { unlink(console) }
        var config = VMConfig(kernelPath: firmware + "/vmlinux", initrdPath: firmware + "/initramfs.cpio.gz",
                              commandLine: "console=ttyS0 reboot=k panic=-1 kvmrun.script=mem_resize",
                              memorySize: 256 * .mib, console: .file(console))
        config.devices.hotplug = HotplugOption(regionSize: MemResizeBootTests.region, requestedSize: 512 * .mib)
        let machine = try Machine(config: config, logger: Logger(label: "kvmrun", factory: { label in StreamLogHandler.standardOutput(label: label) }))
        let runner = try MachineRunner(machine)
        defer {
            machine.requestStop(.failure("test finished"))
            _ = runner.join()
        }
        func resident() throws -> UInt64 {
            try machine.memory.residentBytes(at: MemResizeBootTests.base, length: MemResizeBootTests.region)
        }
        func phase(_ name: String) -> Bool {
            let seen = ConsoleFile.wait(path: console, for: "MEM_PHASE=\(name)", orAny: ["KVMRUN_SCRIPT_EXIT="], seconds: 600)
            if !seen { Issue.record("no MEM_PHASE=\(name); console: \(ConsoleFile.read(console).suffix(3000))") }
            return seen
        }

        guard phase("grown") else { return }
        #expect(machine.hotplugStatus?.pluggedSize == 512 * .mib)
        let grown = try resident()
        print("virtio-mem: region resident after the guest's fill: \(grown >> 20) MiB")
        #expect(grown >= 256 * .mib, "the guest's 320 MiB fill is resident in the region (\(grown >> 20) MiB)")

        try machine.setHotplugTarget(bytes: 128 * .mib)
        guard phase("shrunk") else { return }
        #expect(machine.hotplugStatus?.pluggedSize == 128 * .mib)
        let shrunk = try resident()
        print("virtio-mem: region resident after shrinking to 128 MiB: \(shrunk >> 20) MiB; counters \(machine.virtioMemCounters ?? [:])")
        #expect(shrunk <= 128 * .mib, "unplugged blocks were given back (\(shrunk >> 20) MiB resident)")

        try machine.setHotplugTarget(bytes: 768 * .mib)
        guard phase("regrown") else { return }
        #expect(machine.hotplugStatus?.pluggedSize == 768 * .mib)

        let exit = runner.join()
        #expect(exit == .guestShutdown)
        let text = ConsoleFile.read(console)
        #expect(text.contains("KVMRUN_SCRIPT_EXIT=0"), "console: \(text.suffix(3000))")
    }
}

/// Runs `Machine.run()` on its own thread (it blocks on the machine's event loop).
final class MachineRunner: @unchecked Sendable {
    private let machine: Machine
    private var thread = pthread_t()
    private var joined = false
    private(set) var outcome: MachineExit?

    init(_ machine: Machine) throws {
        self.machine = machine
        let box = Unmanaged.passRetained(self)
        let result = pthread_create(&thread, nil, { argument in
            // SAFETY: argument is the retained runner passed below; released here once.
            let me = Unmanaged<MachineRunner>.fromOpaque(argument!).takeRetainedValue()
            me.outcome = (try? me.machine.run()) ?? .failure("Machine.run threw")
            return nil
        }, box.toOpaque())
        guard result == 0 else {
            box.release()
            throw VMMError.setup("pthread_create for the machine: \(result)")
        }
    }

    /// Waits for `run()` to return (once) and gives its outcome.
    func join() -> MachineExit? {
        if !joined {
            pthread_join(thread, nil)
            joined = true
        }
        return outcome
    }
}

/// The guest console as kvmrun wrote it to a file.
enum ConsoleFile {
    static func read(_ path: String) -> String {
        guard let file = fopen(path, "r") else { return "" }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = fread(&chunk, 1, chunk.count, file)
            if count <= 0 { break }
            bytes += chunk[0..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Polls until the file contains `text` (true) or any of `stops`, or `seconds` pass (false).
    static func wait(path: String, for text: String, orAny stops: [String], seconds: Int) -> Bool {
        for _ in 0..<(seconds * 4) {
            let content = read(path)
            if content.contains(text) { return true }
            if stops.contains(where: { content.contains($0) }) { return false }
            usleep(250_000)
        }
        return false
    }
}
