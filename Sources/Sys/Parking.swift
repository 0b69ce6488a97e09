#if canImport(Glibc)
import Glibc
#endif

/// A pthread mutex and condition variable (on CLOCK_MONOTONIC), for threads that must sleep in
/// the kernel until another thread changes some state: parked vCPUs, the agent server's idle
/// workers, agent client calls waiting for their response. (The Swift `Mutex` has no
/// condition.)
public final class Parking: @unchecked Sendable {
    // SAFETY: heap-allocated once so the pthread objects never move; freed in deinit.
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    public init() {
        pthread_mutex_init(mutex, nil)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(condition, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
        condition.deallocate()
    }

    /// Runs `body` holding the mutex; `body`'s argument waits on the condition (releasing the
    /// mutex meanwhile).
    public func withLock<T>(_ body: (_ wait: () -> Void) -> T) -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return body { pthread_cond_wait(condition, mutex) }
    }

    /// Like `withLock`, with a wait that also returns at `deadline` (a `MonotonicClock` time
    /// in nanoseconds; nil waits without limit). The wait returns false once the deadline has
    /// passed. Spurious wake-ups happen: callers re-check their state in a loop.
    public func withLock<T>(deadline: Int64?, _ body: (_ wait: () -> Bool) -> T) -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return body {
            guard let deadline else {
                pthread_cond_wait(condition, mutex)
                return true
            }
            guard MonotonicClock.now < deadline else { return false }
            var time = timespec(tv_sec: Int(deadline / 1_000_000_000), tv_nsec: Int(deadline % 1_000_000_000))
            return pthread_cond_timedwait(condition, mutex, &time) != ETIMEDOUT
        }
    }

    public func wakeOne() { pthread_cond_signal(condition) }

    public func wakeAll() { pthread_cond_broadcast(condition) }
}

/// CLOCK_MONOTONIC in nanoseconds: deadlines that wall-clock changes do not move.
public enum MonotonicClock {
    public static var now: Int64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Int64(time.tv_sec) * 1_000_000_000 + Int64(time.tv_nsec)
    }

    /// `now` plus `duration`, saturating instead of overflowing.
    public static func deadline(after duration: Duration) -> Int64 {
        let (sum, overflow) = now.addingReportingOverflow(nanoseconds(duration))
        return overflow ? Int64.max : sum
    }

    /// `duration` in nanoseconds, saturating at Int64.min and Int64.max.
    public static func nanoseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        let nanos = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        guard !nanos.overflow else { return seconds < 0 ? Int64.min : Int64.max }
        let (sum, overflow) = nanos.partialValue.addingReportingOverflow(attoseconds / 1_000_000_000)
        return overflow ? (seconds < 0 ? Int64.min : Int64.max) : sum
    }
}

/// Starts a detached pthread running `body` (never the Swift concurrency pool), with a stack of
/// `stackBytes` (0: the system default). Throws naming `what` when the thread cannot start.
public func startThread(_ what: String, stackBytes: Int = 0, _ body: @escaping @Sendable () -> Void) throws(SystemError) {
    final class Box: @unchecked Sendable {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }
    var attributes = pthread_attr_t()
    pthread_attr_init(&attributes)
    defer { pthread_attr_destroy(&attributes) }
    pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
    if stackBytes > 0 { pthread_attr_setstacksize(&attributes, stackBytes) }
    let box = Unmanaged.passRetained(Box(body))
    var thread = pthread_t()
    let result = pthread_create(&thread, &attributes, { argument in
        // SAFETY: argument is the Box retained below; released here, exactly once.
        let box = Unmanaged<Box>.fromOpaque(argument!).takeRetainedValue()
        box.body()
        return nil
    }, box.toOpaque())
    guard result == 0 else {
        box.release()
        throw SystemError(call: "pthread_create for \(what)", errno: result)
    }
}
