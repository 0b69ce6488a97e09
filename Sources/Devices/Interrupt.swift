#if canImport(Glibc)
import Glibc
#endif
import CKVM
import Sys

/// An edge-triggered interrupt a device can raise. The VMM backs it with an eventfd registered
/// through KVM_IRQFD; tests use a counting double.
public protocol InterruptLine: AnyObject, Sendable {
    func trigger()
}

/// An eventfd whose writes KVM turns into an interrupt on one GSI.
public final class EventFDInterrupt: InterruptLine, @unchecked Sendable {
    public let fd: FileDescriptor

    public init() throws(SystemError) {
        fd = FileDescriptor(try sys("eventfd") { kvmrun_eventfd() })
    }

    public func trigger() {
        var one: UInt64 = 1
        // SAFETY: writes the 8-byte local counter increment eventfd expects. EAGAIN (counter
        // saturated) means an interrupt is already pending, which is all we want.
        _ = write(fd.raw, &one, 8)
    }
}
