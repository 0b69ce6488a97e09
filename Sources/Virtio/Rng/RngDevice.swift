#if canImport(Glibc)
import Glibc
#endif
import CKVM
import Memory
import Synchronization

/// virtio-rng (virtio 1.x, 5.4): one request queue; every device-writable buffer the driver
/// offers is filled from the host's getrandom(2), so the guest never waits for entropy.
/// The template for the other devices: state taken at activation behind one lock, a
/// `processQueue` that drains the queue and interrupts once.
public final class RngDevice: VirtioDevice, @unchecked Sendable {
    public static let queueSize: UInt16 = 256
    /// Bytes given per request at most, so one request cannot make the VMM allocate much.
    public static let maxRequest = 64 * 1024

    struct Active {
        var queue: Queue
        let memory: GuestMemory
        let interrupt: VirtioInterrupt
    }

    private let active = Mutex<Active?>(nil)
    private let served = Atomic<UInt64>(0)

    public init() {}

    public var deviceType: VirtioDeviceType { .rng }
    public var availableFeatures: UInt64 { VirtioFeature.version1 }
    public var queueMaxSizes: [UInt16] { [RngDevice.queueSize] }
    /// Random bytes handed to the guest so far.
    public var bytesServed: UInt64 { served.load(ordering: .relaxed) }

    public func readConfig(offset: Int, into data: UnsafeMutableRawBufferPointer) {
        readConfigBytes([], offset: offset, into: data)
    }

    public func activate(_ activation: VirtioActivation) throws(VirtioDeviceError) {
        guard let queue = activation.queues.first, queue.ready else { throw VirtioDeviceError("request queue not ready") }
        active.withLock { $0 = Active(queue: queue, memory: activation.memory, interrupt: activation.interrupt) }
    }

    public func processQueue(_ index: Int) throws(VirtioDeviceError) -> QueueWork {
        let result: Result<(Drained, VirtioInterrupt?), VirtioDeviceError> = active.withLock { active in
            guard var state = active else { return .success((Drained(notify: false, work: .finished), nil)) }
            defer { active = state }
            let drained: Drained
            do throws(VirtioDeviceError) {
                let memory = state.memory
                drained = try state.queue.drain(memory) { chain throws(VirtioDeviceError) in
                    let count = min(chain.writableLength, RngDevice.maxRequest)
                    let written = try chain.writeBytes(randomBytes(count), memory)
                    served.wrappingAdd(UInt64(written), ordering: .relaxed)
                    return UInt32(written)
                }
            } catch {
                return .failure(error)
            }
            return .success((drained, state.interrupt))
        }
        let (drained, interrupt) = try result.get()
        if drained.notify { interrupt?.signalUsedBuffers() }
        return drained.work
    }

    public func reset() {
        active.withLock { $0 = nil }
    }

    private func randomBytes(_ count: Int) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            var filled = 0
            while filled < count {
                // SAFETY: fills the remaining [filled, count) bytes of the new array.
                let got = kvmrun_getrandom(buffer.baseAddress!.advanced(by: filled), count - filled)
                if got < 0 { if errno == EINTR { continue } else { break } }
                filled += got
            }
            initialized = filled
        }
    }
}
