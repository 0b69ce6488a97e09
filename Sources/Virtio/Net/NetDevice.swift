#if canImport(Glibc)
import Glibc
#endif
import Memory
import Synchronization
import Logging

/// virtio-net (virtio 1.x, 5.1) over a packet backend (a tap with IFF_VNET_HDR): one receive and
/// one transmit queue, no control queue. The 12-byte virtio-net header travels unchanged
/// between the guest's buffers and the tap, which understands it; offloads the driver accepts
/// for receiving are passed on with TUNSETOFFLOAD.
///
/// Receive is driven by the event loop: when the backend is readable one frame is read into a
/// staging buffer and copied into the next receive chain (or chains, with MRG_RXBUF). Without
/// free chains the frame stays staged and the device stops watching the backend until the
/// driver adds buffers (a notify on the receive queue), so a guest that does not read costs
/// nothing.
public final class NetDevice: VirtioDevice, CountingDevice, @unchecked Sendable {
    struct Active {
        var rx: Queue
        var tx: Queue
        let memory: GuestMemory
        let interrupt: VirtioInterrupt
        /// VIRTIO_NET_F_MRG_RXBUF: a frame may take several receive chains.
        let mergeable: Bool
    }

    struct State {
        var active: Active?
        /// Bytes of a frame read from the backend and not yet delivered (in `rxBuffer`).
        var stagedLength: Int?
        /// Receive chains taken from the ring and not used yet (the staged frame needs more, or
        /// did not fit).
        var pendingChains: [DescriptorChain] = []
        var watch: (any BackendWatch)?
        var watching = false
        var backendFailed = false
        var rxBuffer = [UInt8](repeating: 0, count: NetSpec.maxPacket)
    }

    /// Frames moved per readable event, so one busy tap cannot hold the event loop.
    static let receiveBudget = 64

    public let backend: any NetBackend
    public let mac: [UInt8]
    let state = Mutex(State())
    let logger: Logger
    /// Counters for the control API, free-running: they wrap.
    let rxPackets = Atomic<UInt64>(0), rxBytes = Atomic<UInt64>(0), rxDropped = Atomic<UInt64>(0)
    let txPackets = Atomic<UInt64>(0), txBytes = Atomic<UInt64>(0), txDropped = Atomic<UInt64>(0)
    let txErrors = Atomic<UInt64>(0)

    /// `mac` must be 6 bytes (NetOption checks it).
    public init(backend: any NetBackend, mac: [UInt8], logger: Logger) {
        self.backend = backend
        self.mac = mac.count == 6 ? mac : [0x02, 0, 0, 0, 0, 1]
        self.logger = logger
    }

    public var deviceType: VirtioDeviceType { .net }
    public var availableFeatures: UInt64 { NetSpec.offeredFeatures }
    public var queueMaxSizes: [UInt16] { [NetSpec.queueSize, NetSpec.queueSize] }

    public var counters: [String: UInt64] {
        [
            "rx_packets": rxPackets.load(ordering: .relaxed), "rx_bytes": rxBytes.load(ordering: .relaxed),
            "rx_dropped": rxDropped.load(ordering: .relaxed), "tx_packets": txPackets.load(ordering: .relaxed),
            "tx_bytes": txBytes.load(ordering: .relaxed), "tx_dropped": txDropped.load(ordering: .relaxed),
            "tx_errors": txErrors.load(ordering: .relaxed),
        ]
    }

    public func readConfig(offset: Int, into data: UnsafeMutableRawBufferPointer) {
        let status = NetSpec.statusLinkUp
        readConfigBytes(mac + [UInt8(status & 0xFF), UInt8(status >> 8)], offset: offset, into: data)
    }

    public func activate(_ activation: VirtioActivation) throws(VirtioDeviceError) {
        guard activation.queues.count == 2, activation.queues[0].ready, activation.queues[1].ready else {
            throw VirtioDeviceError("receive and transmit queues must both be ready")
        }
        try backend.setOffloads(NetSpec.tapOffloads(for: activation.ackedFeatures))
        state.withLock { state in
            // Frames queued while no driver ran may carry offloads the new driver did not accept.
            discardQueuedFrames(&state)
            state.active = Active(rx: activation.queues[0], tx: activation.queues[1], memory: activation.memory,
                                  interrupt: activation.interrupt,
                                  mergeable: activation.ackedFeatures & NetSpec.Feature.mergeableRxBuffers != 0)
            state.stagedLength = nil
            state.pendingChains = []
            setWatching(&state, !state.backendFailed)
        }
    }

    public func processQueue(_ index: Int) throws(VirtioDeviceError) -> QueueWork {
        switch index {
        case NetSpec.receiveQueue:
            // Frames left in the tap after the budget keep it readable: the loop comes back.
            try receive(budget: Int(NetSpec.queueSize))
            return .finished
        case NetSpec.transmitQueue:
            return try transmit()
        default:
            return .finished
        }
    }

    public func reset() {
        state.withLock { stop(&$0) }
        try? backend.setOffloads(0)
    }

    /// Gives the device the event loop's switch for watching the backend (once the loop runs).
    public func connect(_ watch: any BackendWatch) {
        state.withLock { state in
            state.watch = watch
            watch.setReadable(state.watching)
        }
    }

    /// The event loop saw the backend readable. A protocol error found on the receive queue is
    /// thrown after the device stopped itself; the caller fails the transport with it.
    public func backendReadable() throws(VirtioDeviceError) {
        try receive(budget: NetDevice.receiveBudget)
    }

    /// The backend reported an error or hang-up (the tap was deleted): stop receiving for good.
    public func backendFailed(_ reason: String) {
        let first = state.withLock { state -> Bool in
            defer { state.backendFailed = true }
            setWatching(&state, false)
            return !state.backendFailed
        }
        if first { logger.warning("virtio-net \(backend.label): \(reason); receiving stopped") }
    }

    func setWatching(_ state: inout State, _ enabled: Bool) {
        guard state.watching != enabled else { return }
        state.watching = enabled
        state.watch?.setReadable(enabled)
    }

    /// On reset or after a protocol error: touch no guest memory until the next activation.
    func stop(_ state: inout State) {
        state.active = nil
        state.stagedLength = nil
        state.pendingChains = []
        setWatching(&state, false)
    }

    private func discardQueuedFrames(_ state: inout State) {
        let fd = backend.fd
        for _ in 0..<4096 {
            let count = state.rxBuffer.withUnsafeMutableBytes { buffer in
                // SAFETY: reads at most buffer.count bytes into the staging buffer.
                read(fd, buffer.baseAddress, buffer.count)
            }
            if count < 0 { break }
        }
    }
}
