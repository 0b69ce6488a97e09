// The one place that reads errno. Every system call in kvmrun goes through `sys(_:_:)`, which
// retries EINTR and throws the errno together with the call's name.
#if canImport(Glibc)
import Glibc
#endif

/// A failed system call: which call (with its context) and the errno it set.
public struct SystemError: Error, CustomStringConvertible, Equatable, Sendable {
    public let call: String
    public let errno: Int32

    public init(call: String, errno: Int32) {
        self.call = call
        self.errno = errno
    }

    public var errnoName: String {
        switch errno {
        case EPERM: return "EPERM"
        case ENOENT: return "ENOENT"
        case EINTR: return "EINTR"
        case EIO: return "EIO"
        case EBADF: return "EBADF"
        case EAGAIN: return "EAGAIN"
        case ENOMEM: return "ENOMEM"
        case EACCES: return "EACCES"
        case EFAULT: return "EFAULT"
        case EBUSY: return "EBUSY"
        case EEXIST: return "EEXIST"
        case ENODEV: return "ENODEV"
        case EINVAL: return "EINVAL"
        case ENOSPC: return "ENOSPC"
        case ENOSYS: return "ENOSYS"
        case ENXIO: return "ENXIO"
        case E2BIG: return "E2BIG"
        case ENOTTY: return "ENOTTY"
        case EOPNOTSUPP: return "EOPNOTSUPP"
        default: return "errno \(errno)"
        }
    }

    public var description: String {
        let message = String(cString: strerror(errno))
        return "\(call): \(errnoName) (\(message))"
    }
}

/// Runs `body` (a system call returning -1 on failure) until it does not fail with EINTR.
/// Throws `SystemError` naming `call` on any other failure.
@discardableResult
@inline(__always)
public func sys<T: BinaryInteger>(_ call: @autoclosure () -> String, _ body: () -> T) throws(SystemError) -> T {
    while true {
        let result = body()
        if result != -1 { return result }
        let code = Glibc.errno
        if code == EINTR { continue }
        throw SystemError(call: call(), errno: code)
    }
}

/// Like `sys` but returns EINTR to the caller instead of retrying (for KVM_RUN, which must
/// notice the kick signal).
@inline(__always)
public func sysOnce<T: BinaryInteger>(_ call: @autoclosure () -> String, _ body: () -> T) -> Result<T, SystemError> {
    let result = body()
    if result != -1 { return .success(result) }
    return .failure(SystemError(call: call(), errno: Glibc.errno))
}

/// A file descriptor that is closed when the owner goes away.
public final class FileDescriptor: @unchecked Sendable {
    public let raw: Int32
    private var closed = false

    public init(_ raw: Int32) { self.raw = raw }

    public func close() {
        guard !closed else { return }
        closed = true
        _ = Glibc.close(raw)
    }

    deinit { close() }
}
