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

    /// A drive over a sparse image of `imageBytes` (nothing allocated) and a driver with
    /// `memoryBytes` of guest RAM; the image goes when the rig does.
    final class Rig {
        let path: String
        let device: BlockDevice
        let driver: DriverDouble
        let transport: MMIOTransport

        init(_ name: String, imageBytes: Int, memoryBytes: UInt64, queueSize: UInt16) throws {
            path = BlockRig.temporaryPath(name)
            let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            _ = ftruncate(fd, imageBytes)
            close(fd)
            device = try BlockDevice(path: path, id: name)
            driver = try DriverDouble(memorySize: memoryBytes, queueSize: queueSize)
            transport = driver.attach(device)
            driver.initialize()
        }

        deinit { unlink(path) }

        /// Publishes an IN request for sector 0 reading into `count` buffers that all name the
        /// same `length` bytes of guest RAM at `alias`.
        func publishAliasedRead(at alias: GuestAddress, length: UInt32, count: Int, notify: Bool) throws {
            var chain = [DriverDouble.Buffer(address: try driver.allocate(16, bytes: [UInt8](repeating: 0, count: 16)),
                                             length: 16, writable: false)]
            chain += Array(repeating: .init(address: alias, length: length, writable: true), count: count)
            chain.append(.init(address: try driver.allocate(1, bytes: [0xFF]), length: 1, writable: true))
            try driver.publish(chain, queue: 0, notify: notify)
        }
    }

    @Test("a read whose aliased descriptors total more than 4 GiB is refused whole (NEEDS_RESET), not served")
    func aliasedChainOver4GiB() throws {
        // 65 writable descriptors that all name the same 64 MiB of guest RAM: 4160 MiB of read
        // data against a 5 GiB image. Served, its used length (data + status) would not fit a u32.
        let rig = try Rig("alias-4g", imageBytes: 5 << 30, memoryBytes: 96 << 20, queueSize: 128)
        let (driver, device) = (rig.driver, rig.device)
        try rig.publishAliasedRead(at: GuestAddress(32 << 20), length: 64 << 20, count: 65, notify: true)
        #expect(driver.needsReset)
        #expect(driver.log.last?.contains("more than 2^32 bytes") == true)
        #expect(try driver.takeUsed(queue: 0).isEmpty)
        #expect(device.counters["reads"] == 0, "nothing was read")
        // The driver resets the device and it serves again.
        driver.initialize()
        #expect(!driver.needsReset)
    }

    @Test("a reset from a vCPU waits for the one request in flight, not the queue, and nothing is published after it")
    func resetDuringIO() throws {
        let rig = try Rig("reset-io", imageBytes: 1 << 30, memoryBytes: 64 << 20, queueSize: 64)
        let (driver, device, transport) = (rig.driver, rig.device, rig.transport)
        // Two reads of 256 MiB each (8 buffers over the same 32 MiB): long enough to reset
        // the device while the first is in flight.
        for _ in 0..<2 {
            try rig.publishAliasedRead(at: GuestAddress(16 << 20), length: 32 << 20, count: 8, notify: false)
        }
        let loop = TestThread { transport.notify(queue: 0) }  // the event loop's part
        #expect(eventually { device.requestsInFlight == 1 }, "the first read never started")
        driver.writeRegister(MMIOTransport.Register.status, 0)  // the vCPU's part: reset
        #expect(device.requestsInFlight == 0, "reset returned with a request still touching guest memory")
        #expect(device.counters["reads"] == 1, "reset waited for more than the request in flight")
        loop.join()
        #expect(device.counters["reads"] == 1, "a request was served after the reset")
        let usedIndex: UInt16 = try driver.memory.load(at: driver.ringAddresses(0).2 + 2)
        #expect(usedIndex == 0, "a request reached the used ring after the reset")
    }
}
