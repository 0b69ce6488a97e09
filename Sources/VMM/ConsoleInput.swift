#if canImport(Glibc)
import Glibc
#endif
import CKVM
import Devices

/// Forwards the host terminal's keystrokes to the guest's serial port when stdin is a terminal.
/// The terminal goes into raw mode (keeping Ctrl-C as SIGINT) and is restored on detach. When
/// the UART's FIFO is full, input waits on the host side and is retried.
final class ConsoleInput {
    private let serial: Serial8250
    private let active: Bool
    private var pending: [UInt8] = []
    private weak var loop: EventLoop?
    private var token: UInt64?
    private var endOfInput = false

    init(serial: Serial8250, enabled: Bool) {
        self.serial = serial
        self.active = enabled && isatty(STDIN_FILENO) == 1
    }

    func attach(to loop: EventLoop) throws {
        guard active else { return }
        self.loop = loop
        _ = kvmrun_terminal_raw(STDIN_FILENO)
        subscribe()
    }

    private func subscribe() {
        guard token == nil, let loop else { return }
        token = try? loop.subscribe(fd: STDIN_FILENO) { [unowned self] events in self.readInput(events) }
    }

    private func readInput(_ events: UInt32) {
        var buffer = [UInt8](repeating: 0, count: 64)
        // SAFETY: reads at most buffer.count bytes into the local array.
        let count = read(STDIN_FILENO, &buffer, buffer.count)
        if count <= 0 {
            // EOF or error: stop watching stdin, the VM goes on.
            if let token { loop?.unsubscribe(token) }
            token = nil
            endOfInput = true
            return
        }
        pending.append(contentsOf: buffer[0..<count])
        flush()
    }

    private func flush() {
        let accepted = serial.enqueueInput(pending)
        pending.removeFirst(accepted)
        if !pending.isEmpty, let token {
            // Hold further input until the guest drains the FIFO (see retry()).
            loop?.unsubscribe(token)
            self.token = nil
        }
    }

    /// Called periodically by the event loop: pushes held input and resumes reading.
    func retry() {
        guard active else { return }
        if !pending.isEmpty { flush() }
        if pending.isEmpty && token == nil && !endOfInput { subscribe() }
    }

    func detach() {
        guard active else { return }
        kvmrun_terminal_restore(STDIN_FILENO)
    }
}
