// A mutex with a condition variable (pthread), for state that blocking calls wait on: a
// process's exit, a stream's data, the OOM event queue. The agent serves each request on its
// own thread, so waiting blocks only that request.
#if canImport(Glibc)
import Glibc
#endif
import CAgent
import Sys

public final class Monitor: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    public init() {
        // SAFETY: both pointers were just allocated for one element each.
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
        condition.deallocate()
        mutex.deallocate()
    }

    public func withLock<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }

    /// Call with the lock held (inside `withLock`): waits until `ready()` is true or, with a
    /// timeout, until it passes. Returns whether `ready()` held.
    public func wait(timeoutMilliseconds: Int? = nil, until ready: () -> Bool) -> Bool {
        guard let timeoutMilliseconds else {
            while !ready() { pthread_cond_wait(condition, mutex) }
            return true
        }
        let deadline = Self.now() + UInt64(max(0, timeoutMilliseconds)) * 1_000_000
        while !ready() {
            let now = Self.now()
            if now >= deadline { return false }
            var until = timespec(tv_sec: Int(deadline / 1_000_000_000), tv_nsec: Int(deadline % 1_000_000_000))
            pthread_cond_timedwait(condition, mutex, &until)
        }
        return true
    }

    /// Call with the lock held: wakes every waiter to re-check its condition.
    public func broadcast() { pthread_cond_broadcast(condition) }

    /// CLOCK_MONOTONIC in nanoseconds.
    public static func now() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
    }
}

/// Starts one of the agent's threads (reaper, OOM watcher): a named pthread with a small
/// stack (they run shallow loops), through Sys's `startThread`.
func startAgentThread(name: String, _ body: @escaping @Sendable () -> Void) throws(SystemError) {
    try startThread(name, stackBytes: 256 * 1024) {
        kvmrun_set_thread_name(name)
        body()
    }
}
