import Devices
import Memory
import Synchronization
import Logging

/// The virtio-mmio transport, version 2 (virtio 1.x, 4.2): a 4 KiB register window per device
/// on the MMIO bus. It negotiates features, collects queue addresses, runs the device status
/// state machine, and hands validated queues to the device at DRIVER_OK. Any protocol violation
/// by the driver, or a device failure, sets DEVICE_NEEDS_RESET with a logged reason; nothing the
/// guest writes here can crash or hang the VMM.
public final class MMIOTransport: BusDevice, @unchecked Sendable {
    public static let windowSize: UInt64 = 0x1000
    static let magic: UInt32 = 0x7472_6976  // "virt"
    static let version: UInt32 = 2
    static let vendor: UInt32 = 0x4B56_4D52  // "RMVK"

    public enum Register {
        public static let magic = 0x000, version = 0x004, deviceID = 0x008, vendorID = 0x00C
        public static let deviceFeatures = 0x010, deviceFeaturesSelect = 0x014
        public static let driverFeatures = 0x020, driverFeaturesSelect = 0x024
        public static let queueSelect = 0x030, queueSizeMax = 0x034, queueSize = 0x038, queueReady = 0x044
        public static let queueNotify = 0x050, interruptStatus = 0x060, interruptAck = 0x064, status = 0x070
        public static let queueDescriptorLow = 0x080, queueDescriptorHigh = 0x084
        public static let queueDriverLow = 0x090, queueDriverHigh = 0x094
        public static let queueDeviceLow = 0x0A0, queueDeviceHigh = 0x0A4
        public static let configGeneration = 0x0FC, config = 0x100
    }

    public enum Status {
        public static let acknowledge: UInt32 = 1, driver: UInt32 = 2, driverOK: UInt32 = 4
        public static let featuresOK: UInt32 = 8, needsReset: UInt32 = 0x40, failed: UInt32 = 0x80
    }

    struct State {
        var status: UInt32 = 0
        var deviceFeaturesSelect: UInt32 = 0
        var driverFeaturesSelect: UInt32 = 0
        var driverFeatures: UInt64 = 0
        var queueSelect: UInt32 = 0
        var queues: [Queue]
        var activated = false
        var configGeneration: UInt32 = 0
    }

    /// Device failures logged at most; later ones are counted (`failureCount`), so a driver
    /// that breaks and resets its device in a loop cannot flood the VMM's log.
    public static let loggedFailures = 16

    public let device: any VirtioDevice
    public let interrupt: VirtioInterrupt
    private let memory: GuestMemory
    private let state: Mutex<State>
    private let failures = Atomic<UInt64>(0)
    private let logger: Logger
    private let requeue: (@Sendable (Int) -> Void)?
    public let name: String

    /// `requeue(queue)` asks for another `notify(queue:)` soon, but not now (the VMM signals the
    /// queue's ioeventfd again): it is called when the device stopped at its budget.
    public init(device: any VirtioDevice, memory: GuestMemory, interrupt: VirtioInterrupt, name: String,
                requeue: (@Sendable (Int) -> Void)? = nil, logger: Logger) {
        self.device = device
        self.memory = memory
        self.interrupt = interrupt
        self.name = name
        self.requeue = requeue
        self.logger = logger
        state = Mutex(State(queues: device.queueMaxSizes.map { Queue(maxSize: $0) }))
    }

    public var queueCount: Int { device.queueMaxSizes.count }

    /// The device status register (for tests and device counters).
    public var status: UInt32 { state.withLock { $0.status } }

    /// Called when the driver notifies queue `index` (from the queue's ioeventfd on the event
    /// loop thread, or from a QueueNotify exit). Runs the device unless it is not active. When
    /// the device stopped at its budget, asks for a later call through `requeue` and returns
    /// `.budgetExhausted`.
    @discardableResult
    public func notify(queue index: Int) -> QueueWork {
        let active = state.withLock { $0.activated && $0.status & Status.needsReset == 0 }
        guard active, index >= 0, index < queueCount else { return .finished }
        let work: QueueWork
        do {
            work = try device.processQueue(index)
        } catch {
            fail("queue \(index): \(error)")
            return .finished
        }
        if work == .budgetExhausted { requeue?(index) }
        return work
    }

    /// Asks for a `notify(queue:)` soon but not now, through `requeue` (for a device whose work
    /// on the queue started elsewhere, like vsock's host sockets, and stopped at its budget).
    public func notifyLater(queue index: Int) {
        requeue?(index)
    }

    /// Times the device went into NEEDS_RESET.
    public var failureCount: UInt64 { failures.load(ordering: .relaxed) }

    /// Marks the device broken: NEEDS_RESET, a config-change interrupt, one log line (for the
    /// first `loggedFailures` failures; then one line saying later ones are only counted).
    public func fail(_ reason: String) {
        let first = state.withLock { state -> Bool in
            let first = state.status & Status.needsReset == 0
            state.status |= Status.needsReset
            return first
        }
        guard first else { return }
        let count = failures.wrappingAdd(1, ordering: .relaxed).newValue
        if count <= UInt64(MMIOTransport.loggedFailures) {
            logger.warning("\(name): device needs reset: \(reason)")
        } else if count == UInt64(MMIOTransport.loggedFailures) + 1 {
            logger.warning("\(name): device needs reset again; further failures are counted, not logged")
        }
        interrupt.signalConfigChange()
    }

    /// Bumps the config generation and interrupts the driver (the device's config changed).
    public func configChanged() {
        state.withLock { $0.configGeneration &+= 1 }
        interrupt.signalConfigChange()
    }

    public func read(offset: UInt64, data: UnsafeMutableRawBufferPointer) {
        let offset = Int(offset)
        if offset >= Register.config {
            device.readConfig(offset: offset - Register.config, into: data)
            return
        }
        // Registers below the config space are 32 bits wide and read 32 bits at a time.
        guard data.count == 4, offset % 4 == 0 else {
            data.initializeMemory(as: UInt8.self, repeating: 0)
            return
        }
        let value: UInt32 = state.withLock { state in
            switch offset {
            case Register.magic: return MMIOTransport.magic
            case Register.version: return MMIOTransport.version
            case Register.deviceID: return device.deviceType.rawValue
            case Register.vendorID: return MMIOTransport.vendor
            case Register.deviceFeatures:
                let features = device.availableFeatures
                switch state.deviceFeaturesSelect {
                case 0: return UInt32(truncatingIfNeeded: features)
                case 1: return UInt32(truncatingIfNeeded: features >> 32)
                default: return 0
                }
            case Register.queueSizeMax:
                return selectedQueue(state).map { UInt32($0.maxSize) } ?? 0
            case Register.queueReady:
                return selectedQueue(state).map { $0.ready ? 1 : 0 } ?? 0
            case Register.interruptStatus: return interrupt.pending
            case Register.status: return state.status
            case Register.configGeneration: return state.configGeneration
            default: return 0
            }
        }
        data.storeBytes(of: value, as: UInt32.self)
    }

    public func write(offset: UInt64, data: UnsafeRawBufferPointer) {
        let offset = Int(offset)
        if offset >= Register.config {
            device.writeConfig(offset: offset - Register.config, data: data)
            return
        }
        guard data.count == 4, offset % 4 == 0 else {
            fail("\(data.count)-byte write to register 0x\(String(offset, radix: 16)) (must be 32-bit)")
            return
        }
        let value = data.loadUnaligned(as: UInt32.self)
        switch offset {
        case Register.queueNotify:
            notify(queue: Int(value))
        case Register.interruptAck:
            interrupt.acknowledge(value)
        case Register.status:
            writeStatus(value)
        default:
            let problem: String? = state.withLock { state in
                let configurable = state.status & Status.driverOK == 0
                switch offset {
                case Register.deviceFeaturesSelect: state.deviceFeaturesSelect = value
                case Register.driverFeaturesSelect: state.driverFeaturesSelect = value
                case Register.driverFeatures:
                    guard state.status & Status.featuresOK == 0 else { return "driver features written after FEATURES_OK" }
                    switch state.driverFeaturesSelect {
                    case 0: state.driverFeatures = (state.driverFeatures & ~0xFFFF_FFFF) | UInt64(value)
                    case 1: state.driverFeatures = (state.driverFeatures & 0xFFFF_FFFF) | (UInt64(value) << 32)
                    default: break
                    }
                case Register.queueSelect: state.queueSelect = value
                case Register.queueSize, Register.queueReady, Register.queueDescriptorLow, Register.queueDescriptorHigh,
                     Register.queueDriverLow, Register.queueDriverHigh, Register.queueDeviceLow, Register.queueDeviceHigh:
                    guard configurable else { return "queue register 0x\(String(offset, radix: 16)) written after DRIVER_OK" }
                    guard Int(state.queueSelect) < state.queues.count else { return nil }  // no such queue: ignored
                    updateQueue(&state.queues[Int(state.queueSelect)], offset: offset, value: value)
                default:
                    break
                }
                return nil
            }
            if let problem { fail(problem) }
        }
    }

    private func selectedQueue(_ state: State) -> Queue? {
        Int(state.queueSelect) < state.queues.count ? state.queues[Int(state.queueSelect)] : nil
    }

    private func updateQueue(_ queue: inout Queue, offset: Int, value: UInt32) {
        func low(_ address: GuestAddress) -> GuestAddress { GuestAddress((address.raw & ~0xFFFF_FFFF) | UInt64(value)) }
        func high(_ address: GuestAddress) -> GuestAddress { GuestAddress((address.raw & 0xFFFF_FFFF) | (UInt64(value) << 32)) }
        switch offset {
        case Register.queueSize: queue.size = UInt16(truncatingIfNeeded: value)
        case Register.queueReady: queue.ready = value & 1 == 1
        case Register.queueDescriptorLow: queue.descriptorTable = low(queue.descriptorTable)
        case Register.queueDescriptorHigh: queue.descriptorTable = high(queue.descriptorTable)
        case Register.queueDriverLow: queue.availableRing = low(queue.availableRing)
        case Register.queueDriverHigh: queue.availableRing = high(queue.availableRing)
        case Register.queueDeviceLow: queue.usedRing = low(queue.usedRing)
        case Register.queueDeviceHigh: queue.usedRing = high(queue.usedRing)
        default: break
        }
    }

    private func writeStatus(_ value: UInt32) {
        if value == 0 {
            reset()
            return
        }
        enum Step { case none, activate([Queue], UInt64), refuse(String) }
        let step: Step = state.withLock { state in
            let old = state.status
            var new = value
            // FEATURES_OK sticks only if the driver accepted a subset of what was offered,
            // including VERSION_1 (no legacy interface here).
            if new & Status.featuresOK != 0 && old & Status.featuresOK == 0 {
                let offered = device.availableFeatures
                if state.driverFeatures & ~offered != 0 || state.driverFeatures & VirtioFeature.version1 == 0 {
                    new &= ~Status.featuresOK
                }
            }
            state.status = new | (old & Status.needsReset)
            if new & Status.driverOK != 0 && old & Status.driverOK == 0 && !state.activated {
                guard new & Status.featuresOK != 0 else { return .refuse("DRIVER_OK without FEATURES_OK") }
                state.activated = true
                return .activate(state.queues, state.driverFeatures)
            }
            return .none
        }
        switch step {
        case .none:
            break
        case let .refuse(reason):
            fail(reason)
        case let .activate(queues, features):
            do {
                for (index, queue) in queues.enumerated() where queue.ready {
                    do {
                        try queue.validate(in: memory)
                    } catch {
                        throw VirtioDeviceError("queue \(index): \(error)")
                    }
                }
                try device.activate(VirtioActivation(memory: memory, queues: queues, ackedFeatures: features,
                                                     interrupt: interrupt))
            } catch {
                fail("activation: \(error)")
            }
        }
    }

    private func reset() {
        device.reset()
        state.withLock { state in
            let generation = state.configGeneration
            state = State(queues: device.queueMaxSizes.map { Queue(maxSize: $0) })
            state.configGeneration = generation
        }
        interrupt.clear()
    }
}
