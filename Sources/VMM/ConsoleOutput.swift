import Devices
import Logging

extension Machine {
    /// Bytes the console buffer holds for a stalled stdout are written within this long at
    /// exit; what is left then is dropped (and said so).
    static let consoleFinishMilliseconds: Int32 = 2000

    /// Writes out what the console buffer still holds (for a while) and reports dropped bytes.
    func finishConsoleOutput() {
        guard let sink = consoleSink else { return }
        let dropped = sink.finish(timeoutMilliseconds: Machine.consoleFinishMilliseconds)
        if dropped > 0 { logger.warning("console: \(dropped) bytes of guest output dropped (the console's reader did not keep up)") }
    }
}

extension EventLoop {
    /// Watches `sink`'s descriptor for writability while its buffer holds bytes, so the loop
    /// drains what the vCPUs could not write at once. A sink whose writes never wait needs no
    /// watch; one whose descriptor failed is unsubscribed.
    func subscribeConsole(_ sink: BufferedConsoleSink, logger: Logger) {
        guard let fd = sink.pollFD else { return }
        var token: UInt64 = 0
        do {
            token = try subscribe(fd: fd, events: 0) { [unowned self] _ in
                sink.drain()
                if sink.hasFailed { self.unsubscribe(token) }
            }
        } catch {
            // A descriptor epoll cannot watch (/dev/null) does not make writes wait either.
            logger.warning("console: not watched by the event loop (\(error)); output it cannot take at once is dropped")
            return
        }
        guard let interest = interest(token) else { return }
        sink.connect { enabled in
            do {
                try interest.set(enabled ? EventLoop.writable : 0)
            } catch {
                logger.warning("console: \(error)")
            }
        }
    }
}
