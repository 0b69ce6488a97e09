#if canImport(Glibc)
import Glibc
#endif

/// eventfd(2) counters as wake-up signals between threads and the event loop (the descriptors
/// come from `kvmrun_eventfd`: non-blocking, close-on-exec).
extension FileDescriptor {
    /// Adds 1 to the eventfd's counter, waking whoever polls it. EAGAIN (the counter is
    /// saturated) means it is signalled already, which is all a signal needs.
    public func signalEvent() {
        var one: UInt64 = 1
        // SAFETY: writes the local 8-byte counter increment eventfd expects.
        _ = write(raw, &one, 8)
    }

    /// Reads and so resets the eventfd's counter; 0 when it was not signalled.
    @discardableResult
    public func consumeEvent() -> UInt64 {
        var count: UInt64 = 0
        // SAFETY: reads the 8-byte eventfd counter into a local.
        return read(raw, &count, 8) == 8 ? count : 0
    }
}
