#if canImport(Glibc)
import Glibc
#endif
import CKVM
import KVM
import Synchronization

/// A vCPU's own OS thread (never the Swift concurrency pool) running KVM_RUN in a loop, as an
/// explicit state machine: created → running ⇄ paused → finished. `stop()` moves a running vCPU
/// out of KVM_RUN promptly (immediate_exit plus a kick signal) and the loop then finishes;
/// `pause()` kicks it out the same way and parks it in its `shouldStop` check until `resume()`.
final class VcpuThread: @unchecked Sendable {
    enum State: Equatable { case created, running, paused, finished }

    let vcpu: VCPU
    private let body: @Sendable (VCPU, _ shouldStop: () -> Bool) -> Void
    private let state = Mutex<State>(.created)
    private let stopRequested = Atomic<Bool>(false)
    private let pauseRequested = Atomic<Bool>(false)
    private let parking = Parking()
    private let checkpoints = Atomic<UInt64>(0)
    /// Runs on the vCPU thread each time it parks (set before `start()`).
    var onParked: @Sendable () -> Void = {}
    private var thread = pthread_t()
    private var started = false

    init(vcpu: VCPU, body: @escaping @Sendable (VCPU, _ shouldStop: () -> Bool) -> Void) {
        self.vcpu = vcpu
        self.body = body
    }

    /// Installs the no-op handler of the kick signal (once per process, before any start()).
    static func installKickHandler() {
        _ = kvmrun_install_kick_handler(kvmrun_kick_signal())
    }

    /// The vCPU thread's stack. Its loop is shallow (exit → bus → device); 1 MiB, below the
    /// 2 MiB of a transparent huge page, keeps a host with THP "always" from backing the
    /// touched top of an 8 MiB default stack with a whole huge page (2 MiB resident per vCPU).
    static let stackSize = 1 << 20

    func start() throws(VMMError) {
        let box = Unmanaged.passRetained(self)
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        defer { pthread_attr_destroy(&attributes) }
        pthread_attr_setstacksize(&attributes, VcpuThread.stackSize)
        let result = pthread_create(&thread, &attributes, { argument in
            // SAFETY: argument is the retained VcpuThread passed below; released here once.
            let me = Unmanaged<VcpuThread>.fromOpaque(argument!).takeRetainedValue()
            me.main()
            return nil
        }, box.toOpaque())
        guard result == 0 else {
            box.release()
            throw .setup("starting the thread of vCPU \(vcpu.id): pthread_create returned \(result)")
        }
        started = true
    }

    private func main() {
        // The kick must reach this thread even if the process inherited a mask that blocks it
        // (a parent's worker thread may have spawned us with every signal blocked).
        _ = kvmrun_thread_sigmask_one(SIG_UNBLOCK, kvmrun_kick_signal())
        // "vcpu N" in /proc/PID/task/TID/comm: benchmarks tell vCPU time from the VMM's own.
        _ = kvmrun_thread_set_name("vcpu \(vcpu.id)")
        state.withLock { $0 = .running }
        // If stop() came before this thread ran, KVM_RUN must not block.
        if stopRequested.load(ordering: .acquiring) || pauseRequested.load(ordering: .acquiring) {
            vcpu.requestImmediateExit()
        }
        body(vcpu) { checkpoint() }
        state.withLock { $0 = .finished }
    }

    /// The body's `shouldStop`, called once per exit: parks here while a pause is requested.
    private func checkpoint() -> Bool {
        checkpoints.wrappingAdd(1, ordering: .relaxed)
        if stopRequested.load(ordering: .acquiring) { return true }
        guard pauseRequested.load(ordering: .acquiring) else { return false }
        parking.withLock { wait in
            guard pauseRequested.load(ordering: .acquiring), !stopRequested.load(ordering: .acquiring) else { return }
            state.withLock { $0 = .paused }
            onParked()
            while pauseRequested.load(ordering: .acquiring) && !stopRequested.load(ordering: .acquiring) { wait() }
            state.withLock { $0 = .running }
        }
        return stopRequested.load(ordering: .acquiring)
    }

    /// How many times the loop came back from KVM_RUN (one exit each, plus the first check).
    var exitCount: UInt64 { checkpoints.load(ordering: .relaxed) }

    var currentState: State { state.withLock { $0 } }

    /// Asks the vCPU to park at its next exit and kicks it out of KVM_RUN. Safe from any thread.
    func pause() {
        pauseRequested.store(true, ordering: .releasing)
        vcpu.requestImmediateExit()
        if started && state.withLock({ $0 }) == .running {
            _ = kvmrun_pthread_kill(UInt(thread), kvmrun_kick_signal())
        }
    }

    /// Lets a parked vCPU run again (and cancels a pause it has not reached yet).
    func resume() {
        parking.withLock { _ in pauseRequested.store(false, ordering: .releasing) }
        parking.wakeAll()
    }

    /// Asks the loop to finish and kicks it out of KVM_RUN. Safe from any thread, repeatable.
    func stop() {
        stopRequested.store(true, ordering: .releasing)
        vcpu.requestImmediateExit()
        parking.withLock { _ in }
        parking.wakeAll()
        if started && state.withLock({ $0 }) == .running {
            _ = kvmrun_pthread_kill(UInt(thread), kvmrun_kick_signal())
        }
    }

    /// Waits for the thread to end, kicking it meanwhile. Returns false (and leaves the thread
    /// detached) if it has not ended within `timeoutMilliseconds`, so a stuck vCPU cannot hang
    /// the VMM's exit.
    @discardableResult
    func join(timeoutMilliseconds: Int = 5000) -> Bool {
        guard started else { return true }
        var waited = 0
        while state.withLock({ $0 }) != .finished {
            // The thread may be between the stop check and KVM_RUN when the kick arrives;
            // immediate_exit covers that, and the re-kick covers a signal that came too early.
            stop()
            usleep(1000)
            waited += 1
            if waited >= timeoutMilliseconds {
                pthread_detach(thread)
                started = false
                return false
            }
        }
        pthread_join(thread, nil)
        started = false
        return true
    }
}

/// A pthread mutex and condition variable, for parking paused vCPU threads (they must sleep in
/// the kernel, not spin, and the Swift Mutex has no condition).
final class Parking: @unchecked Sendable {
    // SAFETY: heap-allocated once so the pthread objects never move; freed in deinit.
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    init() {
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(condition, nil)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
        condition.deallocate()
    }

    /// Runs `body` holding the mutex; `body`'s argument waits on the condition (releasing the
    /// mutex meanwhile).
    func withLock<T>(_ body: (_ wait: () -> Void) -> T) -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return body { pthread_cond_wait(condition, mutex) }
    }

    func wakeAll() { pthread_cond_broadcast(condition) }
}
