import Memory
import Testing
import Virtio
import VirtioTesting

/// virtio-mem against the driver double. The hotplug region is a real anonymous mapping (its
/// own `GuestMemory`, as `Machine` gives the device its guest memory), so discarding is checked
/// with mincore on the mapping.
@Suite("virtio-mem device")
struct MemTests {
    static let base = GuestAddress(4 * .gib)
    static let regionSize: UInt64 = 256 * .mib
    static let block: UInt64 = 2 * .mib

    /// A driver double with the device at DRIVER_OK and a 256 MiB region at 4 GiB.
    struct Rig {
        let driver: DriverDouble
        let region: GuestMemory
        let device: MemDevice
        let transport: MMIOTransport

        init(requested: UInt64, initialize: Bool = true) throws {
            driver = try DriverDouble()
            region = try GuestMemory(layout: [], hotplug: [(MemTests.base, MemTests.regionSize)])
            device = try MemDevice(memory: region, address: MemTests.base, regionSize: MemTests.regionSize,
                                   blockSize: MemTests.block, requestedSize: requested)
            transport = driver.attach(device)
            if initialize { driver.initialize() }
        }

        /// Sends one request and returns the response the device wrote (nil when it used none).
        func send(_ type: MemRequestType, at address: GuestAddress = MemTests.base, blocks: UInt16 = 1) throws -> MemResponse? {
            try send(rawType: type.rawValue, at: address.raw, blocks: blocks)
        }

        func send(rawType: UInt16, at address: UInt64, blocks: UInt16,
                  requestLength: Int = MemSpec.requestSize) throws -> MemResponse? {
            let request = MemRequest(type: rawType, address: address, blockCount: blocks).bytes
            let out = try driver.allocate(MemSpec.requestSize, bytes: request)
            let response = try driver.allocate(MemSpec.responseSize)
            try driver.publish([.init(address: out, length: UInt32(requestLength), writable: false),
                                .init(address: response, length: UInt32(MemSpec.responseSize), writable: true)], queue: 0)
            let used = try driver.takeUsed(queue: 0)
            guard used.count == 1, used[0].length == UInt32(MemSpec.responseSize) else { return nil }
            let bytes = try driver.memory.read(count: MemSpec.responseSize, at: response)
            guard let type = MemResponseType(rawValue: UInt16(bytes[0]) | UInt16(bytes[1]) << 8) else { return nil }
            // The state field means something only in the answer to STATE.
            let state = rawType == MemRequestType.state.rawValue && type == .ack
                ? MemBlockState(rawValue: UInt16(bytes[8]) | UInt16(bytes[9]) << 8) : nil
            return MemResponse(type, state: state)
        }

        func configField(_ offset: Int) -> UInt64 {
            driver.readConfig(offset: offset, count: 8).reversed().reduce(0) { $0 << 8 | UInt64($1) }
        }

        /// Writes to every page of `blocks` blocks from `first`, so the host backs them.
        func touch(first: Int, blocks: Int) throws {
            for page in stride(from: UInt64(0), to: UInt64(blocks) * MemTests.block, by: Int(GuestMemory.pageSize)) {
                try region.store(UInt64(0xA5A5_A5A5), at: MemTests.address(block: first) + page)
            }
        }

        func resident(first: Int, blocks: Int) throws -> UInt64 {
            try region.residentBytes(at: MemTests.address(block: first), length: UInt64(blocks) * MemTests.block)
        }
    }

    static func address(block index: Int) -> GuestAddress { base + UInt64(index) * block }

    @Test("config space: block size, address, region, usable, plugged and requested sizes; device id 24")
    func config() throws {
        let rig = try Rig(requested: 64 * .mib)
        #expect(rig.driver.readRegister(MMIOTransport.Register.deviceID) == 24)
        #expect(rig.driver.deviceFeatures == VirtioFeature.version1)
        #expect(rig.configField(0) == 2 * .mib)
        #expect(rig.driver.readConfig(offset: 8, count: 2) == [0, 0], "node_id")
        #expect(rig.configField(16) == 4 * .gib)
        #expect(rig.configField(24) == 256 * .mib)
        #expect(rig.configField(32) == 256 * .mib, "usable_region_size")
        #expect(rig.configField(40) == 0, "plugged_size")
        #expect(rig.configField(48) == 64 * .mib, "requested_size")
        #expect(rig.driver.readConfig(offset: 56, count: 4) == [0, 0, 0, 0], "past the end reads 0")
        #expect(rig.driver.status & MMIOTransport.Status.driverOK != 0)
    }

    @Test("PLUG up to the requested size is acknowledged; beyond it NACK; twice ERROR")
    func plug() throws {
        let rig = try Rig(requested: 8 * .mib)
        #expect(try rig.send(.plug, at: MemTests.address(block: 0), blocks: 2) == MemResponse(.ack))
        #expect(try rig.send(.plug, at: MemTests.address(block: 4), blocks: 2) == MemResponse(.ack))
        #expect(rig.configField(40) == 8 * .mib)
        #expect(try rig.send(.plug, at: MemTests.address(block: 10), blocks: 1) == MemResponse(.nack))
        #expect(try rig.send(.plug, at: MemTests.address(block: 1), blocks: 1) == MemResponse(.error),
                "a block that is already plugged")
        #expect(rig.device.pluggedSize == 8 * .mib)
        #expect(rig.device.counters["nack_responses"] == 1)
        #expect(rig.device.counters["ack_responses"] == 2)
        #expect(!rig.driver.needsReset)
    }

    @Test("STATE reports plugged, unplugged and mixed ranges")
    func state() throws {
        let rig = try Rig(requested: 16 * .mib)
        #expect(try rig.send(.plug, at: MemTests.address(block: 2), blocks: 2) == MemResponse(.ack))
        #expect(try rig.send(.state, at: MemTests.address(block: 2), blocks: 2) == MemResponse(.ack, state: .plugged))
        #expect(try rig.send(.state, at: MemTests.address(block: 0), blocks: 2) == MemResponse(.ack, state: .unplugged))
        #expect(try rig.send(.state, at: MemTests.address(block: 1), blocks: 2) == MemResponse(.ack, state: .mixed))
        #expect(try rig.send(.state, at: MemTests.address(block: 127), blocks: 1) == MemResponse(.ack, state: .unplugged))
    }

    static let badRequests: [(String, UInt16, UInt64, UInt16)] = [
        ("unaligned address", 0, base.raw + 4096, 1),
        ("below the region", 0, base.raw - block, 1),
        ("past the region's end", 0, base.raw + 127 * block, 2),
        ("zero blocks", 0, base.raw, 0),
        ("65535 blocks", 0, base.raw, UInt16.max),
        ("address near 2^64", 0, UInt64.max - block + 1, 1),
        ("unplug past the end", 1, base.raw + 128 * block, 1),
        ("state below the region", 3, 0, 1),
        ("unknown request type", 9, base.raw, 1),
    ]

    @Test("bad ranges and unknown types are answered ERROR and change nothing", arguments: badRequests)
    func badRanges(name: String, type: UInt16, address: UInt64, blocks: UInt16) throws {
        let rig = try Rig(requested: 256 * .mib)
        #expect(try rig.send(rawType: type, at: address, blocks: blocks) == MemResponse(.error), "\(name)")
        #expect(rig.device.pluggedSize == 0)
        #expect(!rig.driver.needsReset)
        #expect(try rig.send(.plug) == MemResponse(.ack), "the device keeps working")
    }

    @Test("a request shorter than 24 bytes is answered ERROR; a response buffer under 10 bytes is a protocol error")
    func shortBuffers() throws {
        let rig = try Rig(requested: 8 * .mib)
        #expect(try rig.send(rawType: 0, at: MemTests.base.raw, blocks: 1, requestLength: 16) == MemResponse(.error))
        #expect(rig.device.pluggedSize == 0)
        let request = try rig.driver.allocate(MemSpec.requestSize, bytes: MemRequest(type: 0, address: MemTests.base.raw, blockCount: 1).bytes)
        let response = try rig.driver.allocate(4)
        try rig.driver.publish([.init(address: request, length: 24, writable: false),
                                .init(address: response, length: 4, writable: true)], queue: 0)
        #expect(rig.driver.needsReset)
        #expect(rig.driver.log.contains { $0.contains("response buffer of 4 bytes") })
        #expect(rig.device.pluggedSize == 0)
    }

    @Test("requested size lowered: config change signalled, UNPLUG accepted, host memory given back, plugged_size drops")
    func shrink() throws {
        let rig = try Rig(requested: 32 * .mib)
        #expect(try rig.send(.plug, at: MemTests.address(block: 0), blocks: 16) == MemResponse(.ack))
        try rig.touch(first: 0, blocks: 16)
        #expect(try rig.resident(first: 0, blocks: 16) == 32 * .mib)

        let interruptsBefore = rig.driver.line.count
        let generationBefore = rig.driver.readRegister(MMIOTransport.Register.configGeneration)
        try rig.device.setRequestedSize(8 * .mib)
        rig.transport.configChanged()
        #expect(rig.driver.line.count == interruptsBefore + 1)
        #expect(rig.driver.readRegister(MMIOTransport.Register.interruptStatus) & VirtioInterrupt.configChange != 0)
        #expect(rig.driver.readRegister(MMIOTransport.Register.configGeneration) != generationBefore)
        #expect(rig.configField(48) == 8 * .mib)

        #expect(try rig.send(.unplug, at: MemTests.address(block: 4), blocks: 12) == MemResponse(.ack))
        #expect(rig.configField(40) == 8 * .mib)
        #expect(try rig.resident(first: 4, blocks: 12) == 0, "unplugged blocks are no longer backed")
        #expect(try rig.resident(first: 0, blocks: 4) == 8 * .mib, "plugged blocks keep their memory")
        #expect(try rig.region.load(UInt64.self, at: MemTests.address(block: 4)) == 0)
        #expect(try rig.region.load(UInt64.self, at: MemTests.address(block: 0)) == 0xA5A5_A5A5)
        #expect(rig.device.counters["discarded_bytes"] == 24 * .mib)
        #expect(try rig.send(.unplug, at: MemTests.address(block: 4), blocks: 1) == MemResponse(.error),
                "unplugging an unplugged block")
        #expect(try rig.send(.plug, at: MemTests.address(block: 20), blocks: 1) == MemResponse(.nack),
                "at the new requested size")
    }

    @Test("UNPLUG_ALL unplugs and discards everything")
    func unplugAll() throws {
        let rig = try Rig(requested: 64 * .mib)
        #expect(try rig.send(.plug, at: MemTests.address(block: 0), blocks: 8) == MemResponse(.ack))
        #expect(try rig.send(.plug, at: MemTests.address(block: 100), blocks: 8) == MemResponse(.ack))
        try rig.touch(first: 0, blocks: 8)
        try rig.touch(first: 100, blocks: 8)
        #expect(try rig.send(.unplugAll, at: GuestAddress(0), blocks: 0) == MemResponse(.ack))
        #expect(rig.configField(40) == 0)
        #expect(try rig.region.residentBytes(at: MemTests.base, length: MemTests.regionSize) == 0)
        #expect(try rig.send(.state, at: MemTests.address(block: 0), blocks: 128) == MemResponse(.ack, state: .unplugged))
    }

    @Test("UNPLUG_ALL gives back only what is plugged: nothing to discard when nothing is plugged")
    func unplugAllDiscardsPluggedOnly() throws {
        let rig = try Rig(requested: 64 * .mib)
        for _ in 0..<100 { #expect(try rig.send(.unplugAll) == MemResponse(.ack)) }
        #expect(rig.device.counters["discarded_bytes", default: 0] == 0, "an empty UNPLUG_ALL madvised the region")
        #expect(try rig.send(.plug, at: MemTests.address(block: 3), blocks: 2) == MemResponse(.ack))
        #expect(try rig.send(.plug, at: MemTests.address(block: 64), blocks: 1) == MemResponse(.ack))
        #expect(try rig.send(.plug, at: MemTests.address(block: 127), blocks: 1) == MemResponse(.ack))
        try rig.touch(first: 3, blocks: 2)
        try rig.touch(first: 127, blocks: 1)
        #expect(try rig.send(.unplugAll) == MemResponse(.ack))
        #expect(rig.device.counters["discarded_bytes"] == 4 * MemTests.block)
        #expect(try rig.region.residentBytes(at: MemTests.base, length: MemTests.regionSize) == 0)
        #expect(rig.configField(40) == 0)
    }

    @Test("plugged runs: maximal, in order, across 64-block words and to the end of the bitmap")
    func pluggedRuns() {
        var bitmap = PlugBitmap(blockCount: 200)
        for range in [0..<1, 5..<9, 63..<65, 128..<192, 199..<200] { bitmap.set(range, plugged: true) }
        var runs: [Range<Int>] = []
        bitmap.forEachPluggedRun { runs.append($0); return true }
        #expect(runs == [0..<1, 5..<9, 63..<65, 128..<192, 199..<200])
        runs = []
        bitmap.forEachPluggedRun { runs.append($0); return runs.count < 2 }
        #expect(runs == [0..<1, 5..<9], "stops when asked")
    }

    @Test("counters wrap instead of trapping when a guest drives them past 2^64")
    func countersWrap() {
        var counters = CounterSet()
        counters.add("discarded_bytes", UInt64.max - 1)
        counters.add("discarded_bytes", 256 * .gib)
        #expect(counters["discarded_bytes"] == 256 * .gib - 2)
        counters.add("requests")
        #expect(counters["requests"] == 1 && counters.values.count == 2)
    }

    @Test("plug state survives a device reset (the driver must UNPLUG_ALL after a reboot)")
    func resetKeepsPlugs() throws {
        let rig = try Rig(requested: 8 * .mib)
        #expect(try rig.send(.plug, at: MemTests.address(block: 0), blocks: 2) == MemResponse(.ack))
        rig.driver.writeRegister(MMIOTransport.Register.status, 0)
        #expect(rig.configField(40) == 4 * .mib)
        rig.driver.initialize()
        #expect(try rig.send(.unplugAll) == MemResponse(.ack))
        #expect(rig.configField(40) == 0)
    }

    @Test("requested sizes that are not block multiples or exceed the region are refused")
    func badRequestedSize() throws {
        let rig = try Rig(requested: 0, initialize: false)
        #expect(throws: VirtioDeviceError.self) { try rig.device.setRequestedSize(3 * .mib) }
        #expect(throws: VirtioDeviceError.self) { try rig.device.setRequestedSize(258 * .mib) }
        #expect(rig.device.requestedSize == 0)
        try rig.device.setRequestedSize(256 * .mib)
        #expect(rig.configField(48) == 256 * .mib)
    }

    @Test("2000 random requests: never NEEDS_RESET, never past requested_size, STATE agrees with plugged_size")
    func randomRequests() throws {
        let rig = try Rig(requested: 64 * .mib)
        var seed: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next() -> UInt64 {  // SplitMix64: deterministic, so a failure reproduces
            seed &+= 0x9E37_79B9_7F4A_7C15
            var z = seed
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        for _ in 0..<2000 {
            let address: UInt64 = switch next() % 4 {
            case 0: MemTests.base.raw + (next() % 130) * MemTests.block
            case 1: MemTests.base.raw + next() % (MemTests.regionSize + MemTests.block)
            case 2: next()
            default: MemTests.base.raw &- (next() % 4) * MemTests.block
            }
            let blocks = UInt16(truncatingIfNeeded: next() % 8 == 0 ? next() : next() % 40)
            let response = try rig.send(rawType: UInt16(next() % 6), at: address, blocks: blocks)
            #expect(response != nil)
            #expect(rig.device.pluggedSize <= 64 * .mib)
        }
        #expect(!rig.driver.needsReset)
        let counters = rig.device.counters
        #expect(counters["ack_responses", default: 0] > 50 && counters["nack_responses", default: 0] > 0,
                "the mix reaches every outcome: \(counters)")
        #expect(counters["error_responses", default: 0] > 500 && counters["discarded_bytes", default: 0] > 0,
                "\(counters)")
        var plugged: UInt64 = 0
        for block in 0..<128 {
            let state = try rig.send(.state, at: MemTests.address(block: block))
            if state == MemResponse(.ack, state: .plugged) { plugged += MemTests.block }
        }
        #expect(plugged == rig.device.pluggedSize)
        #expect(rig.configField(40) == plugged)
    }

    @Test("a region outside guest memory or unaligned to the block size is refused")
    func badRegion() throws {
        let memory = try GuestMemory(layout: [], hotplug: [(MemTests.base, 128 * .mib)])
        #expect(throws: VirtioDeviceError.self) {
            try MemDevice(memory: memory, address: MemTests.base, regionSize: 256 * .mib, blockSize: 2 * .mib)
        }
        #expect(throws: VirtioDeviceError.self) {
            try MemDevice(memory: memory, address: MemTests.base + 4096, regionSize: 64 * .mib, blockSize: 2 * .mib)
        }
        #expect(throws: VirtioDeviceError.self) {
            try MemDevice(memory: memory, address: MemTests.base, regionSize: 128 * .mib, blockSize: 3 * .mib)
        }
    }
}
