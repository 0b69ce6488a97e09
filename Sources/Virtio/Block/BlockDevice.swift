import Memory
import Synchronization
import Sys

/// virtio-blk (virtio 1.x, 5.2) over a raw image file: one request queue; IN, OUT, FLUSH
/// (fsync), GET_ID (the drive id as serial), DISCARD and WRITE_ZEROES (where the file system
/// can punch holes). Requests are served synchronously on the thread that processes the queue,
/// straight between the file and guest memory. Whatever a request asks for is checked against
/// the drive's capacity; a bad request gets an IOERR or UNSUPP status, only a chain with no
/// place for the status is a protocol error.
public final class BlockDevice: VirtioDevice, CountingDevice, @unchecked Sendable {
    public static let queueSize: UInt16 = 256
    /// Data segments per request (config `seg_max`): header and status need two more descriptors.
    public static let segmentMax: UInt32 = 128
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
    }

    /// The drive id: the GET_ID serial and the name the control API uses.
    public let id: String
    public let readOnly: Bool
    public let availableFeatures: UInt64
    private let state: Mutex<State>
    private let capacity: Atomic<UInt64>
    private let mayUnmap: Bool
    let stats = BlockCounters()
    private let log: @Sendable (String) -> Void

    /// Opens the image at `path` (read-only drives with O_RDONLY). Errors name the path.
    public init(path: String, readOnly: Bool = false, id: String,
                log: @escaping @Sendable (String) -> Void = { _ in }) throws(SystemError) {
        let file = try BlockFile(path: path, readOnly: readOnly)
        self.id = id
        self.readOnly = readOnly
        self.log = log
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
        state = Mutex(State(file: file, active: nil))
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
        state.withLock { $0.active = active }
    }

    public func processQueue(_ index: Int) throws(VirtioDeviceError) -> QueueWork {
        let result: Result<(Drained, VirtioInterrupt?), VirtioDeviceError> = state.withLock { state in
            guard var active = state.active else { return .success((Drained(notify: false, work: .finished), nil)) }
            defer { state.active = active }
            let drained: Drained
            do throws(VirtioDeviceError) {
                let (file, current) = (state.file, active)
                drained = try active.queue.drain(active.memory) { chain throws(VirtioDeviceError) in
                    try serve(chain, file: file, active: current)
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

    public func reset() {
        state.withLock { $0.active = nil }
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
    private func serve(_ chain: DescriptorChain, file: BlockFile, active: Active) throws(VirtioDeviceError) -> UInt32 {
        let status: GuestAddress
        let outcome: BlockOutcome
        switch try BlockRequest.parse(chain, active.memory) {
        case let .malformed(address, reason):
            status = address
            outcome = .init(status: BlockSpec.Status.ioError, written: 0, problem: reason)
        case let .request(request):
            status = request.status
            let handler = BlockRequestHandler(file: file, memory: active.memory, features: active.features,
                                              serial: id, stats: stats)
            outcome = handler.handle(request)
        }
        if let problem = outcome.problem, stats.shouldLog() { log("virtio-blk \(id): request \(chain.head): \(problem)") }
        stats.record(outcome.status)
        do {
            try active.memory.store(outcome.status, at: status)
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
