import CKVM
import Memory
import Synchronization
import Sys

/// virtio-vsock (virtio 1.x, 5.10) with a Firecracker-style hybrid host side (`VsockMuxer`):
/// queue 0 carries packets to the guest (rx), queue 1 packets from it (tx), queue 2 events
/// (never used: kvmrun does not migrate). The config space is the guest's CID.
///
/// Threads: the host side's sockets are watched by one epoll set (`pollFD`); the VMM's event
/// loop calls `processHostEvents()` when it is readable, on the same thread as `processQueue`.
/// `activate`/`reset` come from vCPU threads. All state is behind one lock.
public final class VsockDevice: VirtioDevice, CountingDevice, @unchecked Sendable {
    public static let queueSize: UInt16 = 256
    public static let rxQueue = 0, txQueue = 1, eventQueue = 2

    struct Active {
        var rx: Queue
        var tx: Queue
        let memory: GuestMemory
        let interrupt: VirtioInterrupt
        /// An rx buffer taken from the ring when there was nothing to put in it.
        var spareRx: DescriptorChain?
        /// Set once the queues failed; cleared by reset/activation.
        var broken = false
    }

    struct State {
        let muxer: VsockMuxer
        var active: Active?
    }

    public let cid: UInt64
    /// The epoll descriptor the VMM's event loop watches for host-side activity.
    public let pollFD: Int32
    private let state: Mutex<State>

    /// Listens on `udsPath` at once (see `UnixStream.listen` for stale and live sockets).
    public init(cid: UInt64, udsPath: String) throws(SystemError) {
        self.cid = cid
        let muxer = try VsockMuxer(cid: cid, udsPath: udsPath)
        pollFD = muxer.poller.epoll.raw
        state = Mutex(State(muxer: muxer, active: nil))
    }

    public var deviceType: VirtioDeviceType { .vsock }
    public var availableFeatures: UInt64 { VirtioFeature.version1 }
    public var queueMaxSizes: [UInt16] { [VsockDevice.queueSize, VsockDevice.queueSize, VsockDevice.queueSize] }

    public var counters: [String: UInt64] {
        state.withLock { state in
            var result = state.muxer.counters.values
            result["connections"] = UInt64(state.muxer.connections.count)
            return result
        }
    }

    /// Control packets waiting for rx buffers, and the room their queue holds (for tests).
    var controlBacklog: (pending: Int, capacity: Int) {
        state.withLock { ($0.muxer.pendingControlCount, $0.muxer.controlCapacity) }
    }

    public func readConfig(offset: Int, into data: UnsafeMutableRawBufferPointer) {
        let bytes = (0..<8).map { UInt8(truncatingIfNeeded: cid >> (8 * $0)) }
        readConfigBytes(bytes, offset: offset, into: data)
    }

    public func activate(_ activation: VirtioActivation) throws(VirtioDeviceError) {
        guard activation.queues.count == 3, activation.queues.allSatisfy(\.ready) else {
            throw VirtioDeviceError("vsock needs its rx, tx and event queues ready")
        }
        let active = Active(rx: activation.queues[VsockDevice.rxQueue], tx: activation.queues[VsockDevice.txQueue],
                            memory: activation.memory, interrupt: activation.interrupt)
        state.withLock { $0.active = active }
    }

    public func processQueue(_ index: Int) throws(VirtioDeviceError) -> QueueWork {
        guard index != VsockDevice.eventQueue else { return .finished }
        return try run { _ in }
    }

    /// Handles what happened on host sockets (new clients, data, hang-ups), then moves packets.
    /// Throws when the queues broke; the caller puts the device into NEEDS_RESET. After
    /// `.budgetExhausted` the caller asks for a notify of the tx queue (`notifyLater`), which
    /// moves the rest.
    public func processHostEvents() throws(VirtioDeviceError) -> QueueWork {
        try run { muxer in muxer.handleHostEvents() }
    }

    public func reset() {
        state.withLock { state in
            state.active = nil
            state.muxer.reset()
        }
    }

    /// Runs `body` on the muxer, then exchanges packets with the guest while the device is
    /// active (at most `exchangeBudget` of them), and interrupts the guest once if it used
    /// buffers.
    private func run(_ body: (VsockMuxer) -> Void) throws(VirtioDeviceError) -> QueueWork {
        let result: Result<(VirtioInterrupt?, QueueWork), VirtioDeviceError> = state.withLock { state in
            body(state.muxer)
            guard var active = state.active, !active.broken else { return .success((nil, .finished)) }
            defer { state.active = active }
            do throws(VirtioDeviceError) {
                let (rxUsed, txUsed, work) = try VsockDevice.exchange(&active, state.muxer, budget: VsockDevice.exchangeBudget)
                // The used index must be visible before the driver's flags are read, or a driver
                // that just re-enabled interrupts and found nothing new would never be woken
                // (x86 may order a later load before an earlier store).
                kvmrun_memory_fence()
                let notify = (rxUsed && !active.rx.interruptsSuppressed(active.memory))
                    || (txUsed && !active.tx.interruptsSuppressed(active.memory))
                return .success((notify ? active.interrupt : nil, work))
            } catch {
                active.broken = true
                return .failure(error)
            }
        }
        let (interrupt, work) = try result.get()
        interrupt?.signalUsedBuffers()
        return work
    }

    /// Packets (either way) one exchange moves at most before it yields the event loop.
    static let exchangeBudget = 256

    /// Takes the guest's tx packets and fills its rx buffers until neither moves or `budget`
    /// packets moved (`.budgetExhausted`: a driver that keeps publishing on another vCPU must
    /// not keep the loop).
    static func exchange(_ active: inout Active, _ muxer: VsockMuxer,
                         budget: Int) throws(VirtioDeviceError) -> (rx: Bool, tx: Bool, work: QueueWork) {
        var rxUsed = false
        var txUsed = false
        var moved = 0
        while true {
            var progress = false
            while muxer.acceptsGuestPackets && moved < budget {
                guard let chain = try active.tx.pop(active.memory) else { break }
                try takeGuestPacket(chain, active.memory, muxer)
                try active.tx.addUsed(active.memory, head: chain.head, length: 0)
                txUsed = true
                progress = true
                moved += 1
            }
            while moved < budget {
                let taken: DescriptorChain?
                if let spare = active.spareRx { taken = spare } else { taken = try active.rx.pop(active.memory) }
                guard let chain = taken else { break }
                active.spareRx = nil
                let room = chain.writableLength - VsockHeader.size
                guard room >= 0 else {
                    throw VirtioDeviceError("rx buffer \(chain.head) has \(chain.writableLength) writable bytes, less than a packet header")
                }
                guard let (header, payload) = muxer.nextPacket(maxPayload: min(room, VsockHeader.maxPayload)) else {
                    active.spareRx = chain
                    break
                }
                let written = try chain.writeBytes(header.bytes + payload, active.memory)
                try active.rx.addUsed(active.memory, head: chain.head, length: UInt32(written))
                rxUsed = true
                progress = true
                moved += 1
            }
            if moved >= budget { return (rxUsed, txUsed, .budgetExhausted) }
            if !progress { return (rxUsed, txUsed, .finished) }
        }
    }

    /// Reads and checks one tx packet; a chain too short for its header or its stated payload
    /// is a driver error.
    static func takeGuestPacket(_ chain: DescriptorChain, _ memory: GuestMemory, _ muxer: VsockMuxer) throws(VirtioDeviceError) {
        guard let header = VsockHeader(bytes: try chain.readBytes(memory, limit: VsockHeader.size)) else {
            throw VirtioDeviceError("tx chain \(chain.head) holds \(chain.readableLength) readable bytes, less than a packet header")
        }
        var payload: [UInt8] = []
        if header.knownOp == .rw {
            guard header.length <= VsockHeader.maxPayload else {
                throw VirtioDeviceError("tx packet of \(header.length) bytes exceeds the \(VsockHeader.maxPayload)-byte limit")
            }
            guard Int(header.length) <= chain.readableLength - VsockHeader.size else {
                throw VirtioDeviceError("tx packet claims \(header.length) payload bytes, chain \(chain.head) holds \(chain.readableLength - VsockHeader.size)")
            }
            payload = try chain.readBytes(memory, offset: VsockHeader.size, limit: Int(header.length))
        }
        muxer.handleGuestPacket(header, payload: payload)
    }
}
