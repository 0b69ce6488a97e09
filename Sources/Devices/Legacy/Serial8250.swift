import Synchronization

/// Where the guest's console bytes go. `write` runs on a vCPU thread and must not block
/// (`BufferedConsoleSink` for file descriptors).
public protocol ConsoleSink: AnyObject, Sendable {
    func write(_ byte: UInt8)
}

/// A 16550A-style UART (the 8250 family) as Linux's 8250 driver drives it: transmit is
/// instantaneous, receive has a 64-byte FIFO, and interrupts follow IER/IIR semantics.
public final class Serial8250: BusDevice, @unchecked Sendable {
    // Register offsets from the base port.
    static let data = 0, interruptEnable = 1, interruptIdentify = 2, lineControl = 3
    static let modemControl = 4, lineStatus = 5, modemStatus = 6, scratch = 7

    // Bits.
    static let ierReceived: UInt8 = 0x01, ierTransmitEmpty: UInt8 = 0x02
    static let iirNone: UInt8 = 0x01, iirTransmitEmpty: UInt8 = 0x02, iirReceived: UInt8 = 0x04
    static let iirFIFOEnabled: UInt8 = 0xC0
    static let lcrDivisorLatch: UInt8 = 0x80
    static let lsrDataReady: UInt8 = 0x01, lsrTransmitEmpty: UInt8 = 0x20, lsrIdle: UInt8 = 0x40
    static let mcrLoop: UInt8 = 0x10
    static let msrDefault: UInt8 = 0xB0  // DCD, DSR, CTS asserted
    public static let fifoCapacity = 64

    struct State {
        var interruptEnable: UInt8 = 0
        var lineControl: UInt8 = 0x03
        var modemControl: UInt8 = 0x08
        var scratch: UInt8 = 0
        var divisorLow: UInt8 = 0x0C  // 9600 baud
        var divisorHigh: UInt8 = 0
        var transmitEmptyPending = false
        var input: [UInt8] = []
    }

    private let state = Mutex(State())
    private let sink: (any ConsoleSink)?
    private let interrupt: any InterruptLine
    private let onFirstOutput: (@Sendable () -> Void)?
    private let sawOutput = Atomic<Bool>(false)

    /// `sink` nil discards output (`--console none`). `onFirstOutput` runs once, on the first
    /// byte the guest transmits.
    public init(sink: (any ConsoleSink)?, interrupt: any InterruptLine, onFirstOutput: (@Sendable () -> Void)? = nil) {
        self.sink = sink
        self.interrupt = interrupt
        self.onFirstOutput = onFirstOutput
    }

    /// Queues host input for the guest. Returns how many bytes fit in the FIFO.
    @discardableResult
    public func enqueueInput(_ bytes: some Collection<UInt8>) -> Int {
        let (accepted, raise) = state.withLock { state -> (Int, Bool) in
            let room = max(0, Serial8250.fifoCapacity - state.input.count)
            let taken = bytes.prefix(room)
            state.input.append(contentsOf: taken)
            return (taken.count, taken.count > 0 && state.interruptEnable & Serial8250.ierReceived != 0)
        }
        if raise { interrupt.trigger() }
        return accepted
    }

    /// Free space in the receive FIFO.
    public var inputRoom: Int { state.withLock { Serial8250.fifoCapacity - $0.input.count } }

    public func read(offset: UInt64, data: UnsafeMutableRawBufferPointer) {
        guard data.count > 0 else { return }
        if data.count > 1 { data.initializeMemory(as: UInt8.self, repeating: 0) }
        let value: UInt8 = state.withLock { state in
            switch Int(offset) {
            case Serial8250.data:
                if state.lineControl & Serial8250.lcrDivisorLatch != 0 { return state.divisorLow }
                return state.input.isEmpty ? 0 : state.input.removeFirst()
            case Serial8250.interruptEnable:
                if state.lineControl & Serial8250.lcrDivisorLatch != 0 { return state.divisorHigh }
                return state.interruptEnable
            case Serial8250.interruptIdentify:
                // Highest-priority pending condition; reading it acknowledges transmit-empty.
                if state.interruptEnable & Serial8250.ierReceived != 0 && !state.input.isEmpty {
                    return Serial8250.iirFIFOEnabled | Serial8250.iirReceived
                }
                if state.transmitEmptyPending {
                    state.transmitEmptyPending = false
                    return Serial8250.iirFIFOEnabled | Serial8250.iirTransmitEmpty
                }
                return Serial8250.iirFIFOEnabled | Serial8250.iirNone
            case Serial8250.lineControl:
                return state.lineControl
            case Serial8250.modemControl:
                return state.modemControl
            case Serial8250.lineStatus:
                var status = Serial8250.lsrTransmitEmpty | Serial8250.lsrIdle
                if !state.input.isEmpty { status |= Serial8250.lsrDataReady }
                return status
            case Serial8250.modemStatus:
                if state.modemControl & Serial8250.mcrLoop != 0 {
                    // Loopback: the modem control outputs appear as the status inputs.
                    let mcr = state.modemControl
                    return ((mcr & 0x01) << 5) | ((mcr & 0x02) << 3) | ((mcr & 0x04) << 4) | ((mcr & 0x08) << 4)
                }
                return Serial8250.msrDefault
            case Serial8250.scratch:
                return state.scratch
            default:
                return 0
            }
        }
        data[0] = value
    }

    public func write(offset: UInt64, data: UnsafeRawBufferPointer) {
        guard let value = data.first else { return }
        var output: UInt8?
        let raise: Bool = state.withLock { state in
            switch Int(offset) {
            case Serial8250.data:
                if state.lineControl & Serial8250.lcrDivisorLatch != 0 {
                    state.divisorLow = value
                    return false
                }
                if state.modemControl & Serial8250.mcrLoop != 0 {
                    // Loopback mode: what is sent comes back as input (the driver's self-test).
                    if state.input.count < Serial8250.fifoCapacity { state.input.append(value) }
                } else {
                    output = value
                }
                if state.interruptEnable & Serial8250.ierTransmitEmpty != 0 {
                    state.transmitEmptyPending = true
                    return true
                }
                return state.interruptEnable & Serial8250.ierReceived != 0 && !state.input.isEmpty
            case Serial8250.interruptEnable:
                if state.lineControl & Serial8250.lcrDivisorLatch != 0 {
                    state.divisorHigh = value
                    return false
                }
                let enablingTransmit = value & Serial8250.ierTransmitEmpty != 0
                    && state.interruptEnable & Serial8250.ierTransmitEmpty == 0
                state.interruptEnable = value & 0x0F
                if enablingTransmit { state.transmitEmptyPending = true }
                return enablingTransmit
                    || (value & Serial8250.ierReceived != 0 && !state.input.isEmpty)
            case Serial8250.lineControl:
                state.lineControl = value
            case Serial8250.modemControl:
                state.modemControl = value & 0x1F
            case Serial8250.scratch:
                state.scratch = value
            default:
                break  // FCR and the read-only registers: nothing to keep.
            }
            return false
        }
        if let output {
            if !sawOutput.load(ordering: .relaxed) && !sawOutput.exchange(true, ordering: .relaxed) {
                onFirstOutput?()
            }
            sink?.write(output)
        }
        if raise { interrupt.trigger() }
    }
}
