#if canImport(Glibc)
import Glibc
#endif
import Memory
import Testing
@testable import Virtio
import VirtioTesting

/// virtio-blk against drivers that try to crash or stall the VMM.
@Suite("virtio-blk against a hostile driver")
struct BlockHostileTests {
    typealias T = BlockSpec.RequestType

    /// A sparse image of `bytes` (nothing allocated), removed by the caller.
    static func sparseImage(_ name: String, bytes: Int) -> String {
        let path = BlockRig.temporaryPath(name)
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        _ = ftruncate(fd, bytes)
        close(fd)
        return path
    }

    @Test("a read whose aliased descriptors total more than 4 GiB is refused whole (NEEDS_RESET), not served")
    func aliasedChainOver4GiB() throws {
        // 65 writable descriptors that all name the same 64 MiB of guest RAM: 4160 MiB of read
        // data against a 5 GiB image. Served, its used length (data + status) would not fit a u32.
        let path = BlockHostileTests.sparseImage("alias-4g", bytes: 5 << 30)
        defer { unlink(path) }
        let device = try BlockDevice(path: path, id: "alias")
        let driver = try DriverDouble(memorySize: 96 << 20, queueSize: 128)
        _ = driver.attach(device)
        driver.initialize()
        let header = try driver.allocate(16, bytes: [UInt8](repeating: 0, count: 16))  // IN, sector 0
        let alias = GuestAddress(32 << 20)
        let status = try driver.allocate(1, bytes: [0xFF])
        var chain = [DriverDouble.Buffer(address: header, length: 16, writable: false)]
        chain += Array(repeating: DriverDouble.Buffer(address: alias, length: 64 << 20, writable: true), count: 65)
        chain.append(.init(address: status, length: 1, writable: true))
        try driver.publish(chain, queue: 0)
        #expect(driver.needsReset)
        #expect(driver.log.last?.contains("more than 2^32 bytes") == true)
        #expect(try driver.takeUsed(queue: 0).isEmpty)
        #expect(device.counters["reads"] == 0, "nothing was read")
        // The driver resets the device and it serves again.
        driver.initialize()
        #expect(!driver.needsReset)
    }
}
