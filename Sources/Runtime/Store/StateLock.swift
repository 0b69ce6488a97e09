#if canImport(Glibc)
import Glibc
#endif

/// A shared or exclusive `flock` on a sandbox's lock file, held until `unlock()` or deinit: it
/// serialises the kvmrun commands acting on one sandbox (readers share, writers exclude), and
/// the kernel drops it when the holder dies, so a crashed command never leaves it taken.
public final class StateLock {
    public enum Mode { case shared, exclusive }
    private var fd: Int32

    public init(path: String, mode: Mode, timeoutSeconds: Int = 60) throws(RuntimeError) {
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw .failed(step: "lock \(path)", reason: errnoText()) }
        let operation = (mode == .shared ? LOCK_SH : LOCK_EX) | LOCK_NB
        var waitedMilliseconds = 0
        while flock(fd, operation) != 0 {
            guard errno == EWOULDBLOCK || errno == EINTR else {
                let reason = errnoText()
                close(fd)
                throw .failed(step: "lock \(path)", reason: reason)
            }
            guard waitedMilliseconds < timeoutSeconds * 1000 else {
                close(fd)
                throw .failed(step: "lock \(path)", reason: "another kvmrun command held it for \(timeoutSeconds) s")
            }
            usleep(10_000)
            waitedMilliseconds += 10
        }
    }

    public func unlock() {
        guard fd >= 0 else { return }
        close(fd)
        fd = -1
    }

    deinit { unlock() }
}
