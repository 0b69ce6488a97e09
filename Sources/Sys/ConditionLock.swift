#if canImport(Glibc)
import Glibc
#endif

/// A value behind a pthread mutex with one condition variable: for state that one thread must
/// wait on until another changes it (Swift's `Mutex` has no condition). Waiters sleep in the
/// kernel; `withLock` wakes them all after every change.
public final class ConditionLock<Value>: @unchecked Sendable {
    // SAFETY: heap-allocated once so the pthread objects and the value never move; freed in deinit.
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private let value = UnsafeMutablePointer<Value>.allocate(capacity: 1)

    public init(_ initial: Value) {
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(condition, nil)
        value.initialize(to: initial)
    }

    deinit {
        value.deinitialize(count: 1)
        value.deallocate()
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
        condition.deallocate()
    }

    /// Runs `body` on the value with the lock held, then wakes every waiter.
    public func withLock<R, E: Error>(_ body: (inout Value) throws(E) -> R) throws(E) -> R {
        pthread_mutex_lock(mutex)
        defer {
            pthread_cond_broadcast(condition)
            pthread_mutex_unlock(mutex)
        }
        // SAFETY: the value is only reached with the mutex held, one access at a time.
        return try body(&value.pointee)
    }

    /// Sleeps until `ready` holds for the value (checked with the lock held, again after each
    /// change), then runs `body` on it with the lock still held.
    public func wait<R>(until ready: (Value) -> Bool, then body: (inout Value) -> R) -> R {
        pthread_mutex_lock(mutex)
        defer {
            pthread_cond_broadcast(condition)
            pthread_mutex_unlock(mutex)
        }
        // SAFETY: as in withLock; pthread_cond_wait releases the mutex only while asleep,
        // between two accesses.
        while !ready(value.pointee) { pthread_cond_wait(condition, mutex) }
        return body(&value.pointee)
    }
}
