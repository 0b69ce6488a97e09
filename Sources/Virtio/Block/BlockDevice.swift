import Memory
import Synchronization
import Sys
import Logging

/// virtio-blk (virtio 1.x, 5.2) over a raw image file: one request queue; IN, OUT, FLUSH
/// (fsync), GET_ID (the drive id as serial), DISCARD and WRITE_ZEROES (where the file system
/// can punch holes). Requests are served on the thread that processes the queue, straight
/// between the file and guest memory, one at a time and outside the device's lock: the lock
/// covers taking a chain from the ring and putting it on the used ring, so a reset from a vCPU
/// waits for the one request in flight at most, and nothing of it reaches the used ring after
/// the reset. Whatever a request asks for is checked against the drive's capacity; a bad
/// request gets an IOERR or UNSUPP status, only a chain with no place for the status is a
/// protocol error.
public final class BlockDevice: VirtioDevice, CountingDevice, @unchecked Sendable {
    /// Ring entries. With no indirect descriptors a request takes `segmentMax` + 2 of them, so
    /// the ring holds one request of the largest size and more of smaller ones.
    public static let queueSize: UInt16 = 512
    /// Data segments per request (config `seg_max`): header and status need two more
    /// descriptors. 256 pages take a 1 MiB transfer from scattered guest pages in one request:
    /// at 128, Linux split each 1 MiB `O_DIRECT` write in two, and the second waited for the
    /// first (its chain did not fit the ring beside it), two round trips to the guest per MiB
    /// (README "I/O figures").
    public static let segmentMax: UInt32 = 256
    public static let maxDiscardSectors: UInt32 = 1 << 22
    public static let maxDiscardSegments: UInt32 = 32
    /// 4 KiB: the granularity at which file systems can deallocate.
    public static let discardSectorAlignment: UInt32 = 8
    public static let maxWriteZeroesSectors: UInt32 = 1 << 16
    public static let maxWriteZeroesSegments: UInt32 = 1

    struct Active {
        var queue: Queue
        let memory: GuestMemory
        let interrupt: VirtioInterrupt
        let features: UInt64
    }

    struct State {
        var file: BlockFile
        var active: Active?
        /// Bumped by every activation and reset: a request taken before belongs to no queue.
        var generation: UInt64 = 0
        /// Requests taken from the ring and being served outside the lock.
        var inFlight = 0
    }

    /// A request taken from the ring, with what serving it needs.
    struct Job {
        let chain: DescriptorChain
        let file: BlockFile
        let memory: GuestMemory
        let features: UInt64
        let generation: UInt64
    }

    /// The drive id: the GET_ID serial and the name the control API uses.
    public let id: String
    public let readOnly: Bool
    public let availableFeatures: UInt64
    private let state: ConditionLock<State>
    private let capacity: Atomic<UInt64>
    private let mayUnmap: Bool
    let stats = BlockCounters()
    private let logger: Logger

    /// Opens the image at `path` (read-only drives with O_RDONLY). Errors name the path.
    public init(path: String, readOnly: Bool = false, id: String,
                logger: Logger = .discarding) throws(SystemError) {
        let file = try BlockFile(path: path, readOnly: readOnly)
        self.id = id
        self.readOnly = readOnly
        self.logger = logger
        mayUnmap = file.canPunchHoles
        var features = VirtioFeature.version1 | BlockSpec.Feature.flush | BlockSpec.Feature.blockSize
            | BlockSpec.Feature.segMax
        if readOnly {
            features |= BlockSpec.Feature.readOnly
        } else {
            features |= BlockSpec.Feature.writeZeroes
            if file.canPunchHoles { features |= BlockSpec.Feature.discard }
        }
        availableFeatures = features
        capacity = Atomic(file.capacitySectors)
        state = ConditionLock(State(file: file, active: nil))
    }

    public var deviceType: VirtioDeviceType { .block }
    public var queueMaxSizes: [UInt16] { [BlockDevice.queueSize] }
    /// Capacity in 512-byte sectors, as the config space shows it.
    public var capacitySectors: UInt64 { capacity.load(ordering: .acquiring) }
    /// The path of the current backing file.
    public var path: String { state.withLock { $0.file.path } }
    public var counters: [String: UInt64] { stats.snapshot }

    public func readConfig(offset: Int, into data: UnsafeMutableRawBufferPointer) {
        let discard = availableFeatures & BlockSpec.Feature.discard != 0
        let zeroes = availableFeatures & BlockSpec.Feature.writeZeroes != 0
        let config = BlockConfigSpace(
            capacity: capacitySectors, segMax: BlockDevice.segmentMax, blockSize: UInt32(BlockSpec.sectorSize),
            maxDiscardSectors: discard ? BlockDevice.maxDiscardSectors : 0,
            maxDiscardSegments: discard ? BlockDevice.maxDiscardSegments : 0,
            discardSectorAlignment: discard ? BlockDevice.discardSectorAlignment : 0,
            maxWriteZeroesSectors: zeroes ? BlockDevice.maxWriteZeroesSectors : 0,
            maxWriteZeroesSegments: zeroes ? BlockDevice.maxWriteZeroesSegments : 0,
            writeZeroesMayUnmap: zeroes && mayUnmap ? 1 : 0)
        readConfigBytes(config.bytes, offset: offset, into: data)
    }

    public func activate(_ activation: VirtioActivation) throws(VirtioDeviceError) {
        guard let queue = activation.queues.first, queue.ready else { throw VirtioDeviceError("request queue not ready") }
        let active = Active(queue: queue, memory: activation.memory, interrupt: activation.interrupt,
                            features: activation.ackedFeatures)
        state.withLock { state in
            state.active = active
            state.generation &+= 1
        }
    }

    /// Serves up to `Queue.defaultBudget` requests, each outside the lock, and interrupts the
    /// driver once for all of them.
    public func processQueue(_ index: Int) throws(VirtioDeviceError) -> QueueWork {
        var served = 0
        var interrupt: VirtioInterrupt?
        defer { interrupt?.signalUsedBuffers() }
        while served < Queue.defaultBudget {
            guard let job = try take() else { return .finished }
            served += 1
            let outcome = Result { () throws(VirtioDeviceError) in try serve(job) }
            if let done = try complete(job, outcome) { interrupt = done }
        }
        return .budgetExhausted
    }

    /// Takes the next chain off the ring (nil when there is none or the device is not active)
    /// and counts it in flight.
    private func take() throws(VirtioDeviceError) -> Job? {
        try state.withLock { state throws(VirtioDeviceError) -> Job? in
            guard var active = state.active else { return nil }
            defer { state.active = active }
            guard let chain = try active.queue.pop(active.memory) else { return nil }
            state.inFlight += 1
            return Job(chain: chain, file: state.file, memory: active.memory, features: active.features,
                       generation: state.generation)
        }
    }

    /// Puts a served request on the used ring, unless the device was reset (or re-activated)
    /// meanwhile. Returns the interrupt to raise when the driver wants one.
    private func complete(_ job: Job, _ outcome: Result<UInt32, VirtioDeviceError>) throws(VirtioDeviceError) -> VirtioInterrupt? {
        try state.withLock { state throws(VirtioDeviceError) -> VirtioInterrupt? in
            state.inFlight -= 1
            guard state.generation == job.generation, var active = state.active else { return nil }
            defer { state.active = active }
            try active.queue.addUsed(active.memory, head: job.chain.head, length: try outcome.get())
            return active.queue.interruptsSuppressed(active.memory) ? nil : active.interrupt
        }
    }

    /// Requests in flight (for tests).
    var requestsInFlight: Int { state.withLock { $0.inFlight } }

    /// Stops the device; returns once no request is being served, so no request touches guest
    /// memory after it (a request in flight finishes, unpublished).
    public func reset() {
        state.withLock { state in
            state.active = nil
            state.generation &+= 1
        }
        state.wait(until: { $0.inFlight == 0 }, then: { _ in })
    }

    /// Points the drive at another image, opened the same way (read-only or not); on any error
    /// the current file stays. Returns the new capacity in sectors. The caller tells the driver
    /// with the transport's `configChanged()`.
    @discardableResult
    public func replaceBackingFile(path: String) throws(SystemError) -> UInt64 {
        let file = try BlockFile(path: path, readOnly: readOnly)
        state.withLock { $0.file = file }
        capacity.store(file.capacitySectors, ordering: .releasing)
        return file.capacitySectors
    }

    /// Serves one chain and writes its status; returns the used length (bytes written).
    private func serve(_ job: Job) throws(VirtioDeviceError) -> UInt32 {
        let chain = job.chain
        let status: GuestAddress
        let outcome: BlockOutcome
        switch try BlockRequest.parse(chain, job.memory) {
        case let .malformed(address, reason):
            status = address
            outcome = .init(status: BlockSpec.Status.ioError, written: 0, problem: reason)
        case let .request(request):
            status = request.status
            let handler = BlockRequestHandler(file: job.file, memory: job.memory, features: job.features,
                                              serial: id, stats: stats)
            outcome = handler.handle(request)
        }
        if let problem = outcome.problem, stats.shouldLog() { logger.warning("virtio-blk \(id): request \(chain.head): \(problem)") }
        stats.record(outcome.status)
        do {
            try job.memory.store(outcome.status, at: status)
        } catch {
            throw VirtioDeviceError("virtio-blk status byte at \(status): \(error)")
        }
        // A chain holds at most 2^32 bytes (Queue.maxChainBytes), the 16-byte header among
        // them, so the data written plus the status byte fits a u32; checked all the same.
        guard let used = UInt32(exactly: outcome.written + 1) else {
            throw VirtioDeviceError("virtio-blk request \(chain.head): \(outcome.written) bytes written do not fit a used length")
        }
        return used
    }
}
