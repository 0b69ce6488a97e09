import Synchronization

/// Just enough of the PS/2 controller (i8042) for Linux: the reset command (0xFE to port 0x64),
/// which ends the VM, and answers to the probe so the guest's driver does not wait for a
/// device that is not there. Base port 0x60; offset 0 is data, offset 4 is status/command.
/// Answers wait in a small output buffer; a guest that sends commands without reading the
/// answers loses the newest ones once it is full (host memory stays bounded).
public final class I8042: BusDevice, @unchecked Sendable {
    public static let resetCommand: UInt8 = 0xFE
    /// Answers kept at most: Linux's i8042 driver flushes up to 16 bytes (I8042_BUFFER_SIZE).
    public static let outputCapacity = 16
    static let statusOutputFull: UInt8 = 0x01
    static let statusSystemFlag: UInt8 = 0x04
    static let statusNotInhibited: UInt8 = 0x10

    struct State {
        var commandByte: UInt8 = 0x07  // IRQs on, system flag
        var output: [UInt8] = []
        var pendingCommand: UInt8?

        /// Queues an answer unless the output buffer is full.
        mutating func answer(_ byte: UInt8) {
            if output.count < I8042.outputCapacity { output.append(byte) }
        }
    }

    private let state = Mutex(State())
    private let onReset: @Sendable () -> Void

    /// `onReset` runs when the guest asks for a CPU reset.
    public init(onReset: @escaping @Sendable () -> Void) {
        self.onReset = onReset
    }

    public func read(offset: UInt64, data: UnsafeMutableRawBufferPointer) {
        guard data.count > 0 else { return }
        data.initializeMemory(as: UInt8.self, repeating: 0)
        data[0] = state.withLock { state in
            switch offset {
            case 0:
                return state.output.isEmpty ? 0 : state.output.removeFirst()
            case 4:
                return I8042.statusSystemFlag | I8042.statusNotInhibited | (state.output.isEmpty ? 0 : I8042.statusOutputFull)
            default:
                return 0
            }
        }
    }

    public func write(offset: UInt64, data: UnsafeRawBufferPointer) {
        guard let value = data.first else { return }
        var reset = false
        state.withLock { state in
            switch offset {
            case 0:
                // Data byte: the argument of a command that takes one, else for a device we lack.
                if state.pendingCommand == 0x60 { state.commandByte = value }
                state.pendingCommand = nil
            case 4:
                switch value {
                case 0x20: state.answer(state.commandByte)   // read command byte
                case 0x60: state.pendingCommand = 0x60       // write command byte
                case 0xAA: state.answer(0x55)                // controller self-test passed
                case 0xAB, 0xA9: state.answer(0x00)          // port test: no error
                case I8042.resetCommand: reset = true
                default: break
                }
            default:
                break
            }
        }
        if reset { onReset() }
    }
}
