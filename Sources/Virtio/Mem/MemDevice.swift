import Memory
import Synchronization

/// virtio-mem (virtio 1.2, 5.15): a region of guest-physical memory that the guest plugs and
/// unplugs in blocks, asked to by `requested_size`. One request queue: PLUG, UNPLUG,
/// UNPLUG_ALL and STATE. The region is a hotplug region of guest memory (mapped, registered with
/// KVM, outside the e820 map); unplugged blocks are given back to the host with
/// madvise(MADV_DONTNEED). Bad requests (unaligned, outside the region, zero blocks, wrong
/// state) are answered ERROR; only a response buffer too small to answer in is a protocol
/// error. Plug state survives a device reset, as the spec requires: a rebooted driver sees
/// `plugged_size` and unplugs everything first.
public final class MemDevice: VirtioDevice, CountingDevice, @unchecked Sendable {
    public static let queueSize: UInt16 = 128

    struct Active {
        var queue: Queue
        let memory: GuestMemory
        let interrupt: VirtioInterrupt
    }

    struct State {
        var blocks: PlugBitmap
        var requestedSize: UInt64
        var active: Active?
        var counters = CounterSet()
    }

    public let address: GuestAddress
    public let regionSize: UInt64
    public let blockSize: UInt64
    /// The memory holding the region; unplugged blocks are discarded through it.
    private let memory: GuestMemory
    private let state: Mutex<State>

    /// A device for the region `address..+regionSize` of `memory`, in blocks of `blockSize`
    /// (a power of two of at least 4 KiB that divides the address and the size).
    public init(memory: GuestMemory, address: GuestAddress, regionSize: UInt64, blockSize: UInt64,
                requestedSize: UInt64 = 0) throws(VirtioDeviceError) {
        guard blockSize >= GuestMemory.pageSize, blockSize & (blockSize - 1) == 0 else {
            throw VirtioDeviceError("virtio-mem: block size \(blockSize) is not a power of two of at least 4 KiB")
        }
        guard regionSize > 0, regionSize % blockSize == 0, address.raw % blockSize == 0 else {
            throw VirtioDeviceError("virtio-mem: region \(address)..+\(regionSize) is not aligned to the block size \(blockSize)")
        }
        guard memory.isValid(address, length: regionSize) else {
            throw VirtioDeviceError("virtio-mem: region \(address)..+\(regionSize) is not mapped guest memory")
        }
        self.memory = memory
        self.address = address
        self.regionSize = regionSize
        self.blockSize = blockSize
        state = Mutex(State(blocks: PlugBitmap(blockCount: Int(regionSize / blockSize)), requestedSize: 0))
        try setRequestedSize(requestedSize)
    }

    public var deviceType: VirtioDeviceType { .mem }
    public var availableFeatures: UInt64 { VirtioFeature.version1 }
    public var queueMaxSizes: [UInt16] { [MemDevice.queueSize] }

    public var config: MemConfig {
        state.withLock { state in
            MemConfig(blockSize: blockSize, address: address.raw, regionSize: regionSize,
                      usableRegionSize: regionSize, pluggedSize: UInt64(state.blocks.pluggedCount) * blockSize,
                      requestedSize: state.requestedSize)
        }
    }

    public var pluggedSize: UInt64 { state.withLock { UInt64($0.blocks.pluggedCount) * blockSize } }
    public var requestedSize: UInt64 { state.withLock { $0.requestedSize } }
    public var counters: [String: UInt64] {
        state.withLock { state in
            state.counters.values.merging(["plugged_bytes": UInt64(state.blocks.pluggedCount) * blockSize,
                                    "requested_bytes": state.requestedSize]) { $1 }
        }
    }

    /// Sets the size the guest is asked to plug (a multiple of the block size, at most the
    /// region). The caller then signals a config change through the transport.
    public func setRequestedSize(_ bytes: UInt64) throws(VirtioDeviceError) {
        guard bytes <= regionSize, bytes % blockSize == 0 else {
            throw VirtioDeviceError("virtio-mem: requested size \(bytes) is not a multiple of the block size \(blockSize) up to the region size \(regionSize)")
        }
        state.withLock { $0.requestedSize = bytes }
    }

    public func readConfig(offset: Int, into data: UnsafeMutableRawBufferPointer) {
        readConfigBytes(config.bytes, offset: offset, into: data)
    }

    public func activate(_ activation: VirtioActivation) throws(VirtioDeviceError) {
        guard let queue = activation.queues.first, queue.ready else { throw VirtioDeviceError("request queue not ready") }
        state.withLock { $0.active = Active(queue: queue, memory: activation.memory, interrupt: activation.interrupt) }
    }

    public func reset() {
        state.withLock { $0.active = nil }
    }

    public func processQueue(_ index: Int) throws(VirtioDeviceError) -> QueueWork {
        let result: Result<(Drained, VirtioInterrupt?), VirtioDeviceError> = state.withLock { state in
            guard var active = state.active else { return .success((Drained(notify: false, work: .finished), nil)) }
            defer { state.active = active }
            let drained: Drained
            do throws(VirtioDeviceError) {
                let memory = active.memory
                drained = try active.queue.drain(memory) { chain throws(VirtioDeviceError) in
                    guard chain.writableLength >= MemSpec.responseSize else {
                        throw VirtioDeviceError("request \(chain.head): response buffer of \(chain.writableLength) bytes, need \(MemSpec.responseSize)")
                    }
                    let bytes = try chain.readBytes(memory, limit: MemSpec.requestSize)
                    let response = MemRequest(bytes: bytes).map { handle($0, &state) } ?? MemResponse(.error)
                    count(response, &state)
                    return UInt32(try chain.writeBytes(response.bytes, memory))
                }
            } catch {
                return .failure(error)
            }
            return .success((drained, active.interrupt))
        }
        let (drained, interrupt) = try result.get()
        if drained.notify { interrupt?.signalUsedBuffers() }
        return drained.work
    }

    /// Carries out one request on the plug state.
    func handle(_ request: MemRequest, _ state: inout State) -> MemResponse {
        switch MemRequestType(rawValue: request.type) {
        case .plug?:
            state.counters.add("plug_requests")
            guard let blocks = blockRange(request), state.blocks.state(of: blocks) == .unplugged else { return MemResponse(.error) }
            let after = UInt64(state.blocks.pluggedCount + blocks.count) * blockSize
            guard after <= state.requestedSize else { return MemResponse(.nack) }
            state.blocks.set(blocks, plugged: true)
            return MemResponse(.ack)
        case .unplug?:
            state.counters.add("unplug_requests")
            guard let blocks = blockRange(request), state.blocks.state(of: blocks) == .plugged else { return MemResponse(.error) }
            guard discard(blocks, &state) else { return MemResponse(.busy) }
            state.blocks.set(blocks, plugged: false)
            return MemResponse(.ack)
        case .unplugAll?:
            state.counters.add("unplug_all_requests")
            // Only what is plugged is given back: unplugged blocks were given back when they
            // were unplugged, so a repeated UNPLUG_ALL costs nothing.
            var discarded = true
            let plugged = state.blocks
            plugged.forEachPluggedRun { blocks in
                discarded = discard(blocks, &state)
                return discarded
            }
            guard discarded else { return MemResponse(.busy) }
            state.blocks.clear()
            return MemResponse(.ack)
        case .state?:
            state.counters.add("state_requests")
            guard let blocks = blockRange(request) else { return MemResponse(.error) }
            return MemResponse(.ack, state: state.blocks.state(of: blocks))
        case nil:
            state.counters.add("unknown_requests")
            return MemResponse(.error)
        }
    }

    /// The blocks a request names, or nil when its address is unaligned, it names no block, or
    /// it reaches outside the (usable) region.
    func blockRange(_ request: MemRequest) -> Range<Int>? {
        guard request.blockCount > 0, request.address >= address.raw else { return nil }
        let offset = request.address - address.raw
        guard offset % blockSize == 0 else { return nil }
        let first = offset / blockSize
        let end = first + UInt64(request.blockCount)  // first < 2^64 / 4096: no overflow
        guard end <= regionSize / blockSize else { return nil }
        return Int(first)..<Int(end)
    }

    /// Gives the host memory of `blocks` back; false (and counted) when madvise failed.
    private func discard(_ blocks: Range<Int>, _ state: inout State) -> Bool {
        let start = address + UInt64(blocks.lowerBound) * blockSize
        let length = UInt64(blocks.count) * blockSize
        do {
            try memory.discard(at: start, length: length)
            state.counters.add("discarded_bytes", length)
            return true
        } catch {
            state.counters.add("discard_errors")
            return false
        }
    }

    private func count(_ response: MemResponse, _ state: inout State) {
        let name = switch response.type {
        case .ack: "ack_responses"
        case .nack: "nack_responses"
        case .busy: "busy_responses"
        case .error: "error_responses"
        }
        state.counters.add(name)
    }
}
