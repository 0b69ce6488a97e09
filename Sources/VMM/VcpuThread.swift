#if canImport(Glibc)
import Glibc
#endif
import CKVM
import KVM
import Sys
import Synchronization

/// A vCPU's own OS thread (never the Swift concurrency pool) running KVM_RUN in a loop, as an
/// explicit state machine: created → running ⇄ paused → finished. `stop()` moves a running vCPU
/// out of KVM_RUN promptly (a kick signal, whose handler sets immediate_exit on the vCPU's own
/// thread) and the loop then finishes; `pause()` kicks it out the same way and parks it in its
/// `shouldStop` check until `resume()`. Requests are flags set before the kick: whenever the
/// handler runs, either the next check sees the flag or the next KVM_RUN returns at once.
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

    /// Installs the handler of the kick signal (once per process, before any start()).
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
        vcpu.bindKicksToCurrentThread()
        // "vcpu N" in /proc/PID/task/TID/comm: benchmarks tell vCPU time from the VMM's own.
        _ = kvmrun_thread_set_name("vcpu \(vcpu.id)")
        state.withLock { $0 = .running }
        // A kick that came before the binding found no vCPU: the flags it stood for are set.
        if stopRequested.load(ordering: .acquiring) || pauseRequested.load(ordering: .acquiring) {
            vcpu.requestImmediateExit()
        }
        body(vcpu) { checkpoint() }
        VCPU.unbindKicks()
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
        kick()
    }

    /// Lets a parked vCPU run again (and cancels a pause it has not reached yet).
    func resume() {
        parking.withLock { _ in pauseRequested.store(false, ordering: .releasing) }
        parking.wakeAll()
    }

    /// Asks the loop to finish and kicks it out of KVM_RUN. Safe from any thread, repeatable.
    func stop() {
        stopRequested.store(true, ordering: .releasing)
        parking.withLock { _ in }
        parking.wakeAll()
        kick()
    }

    /// Sends the kick signal unless the thread has finished. Whatever the thread is doing (in
    /// KVM_RUN, between two runs, parked, just leaving the park), the handler sets
    /// immediate_exit on it, so the flag set before is acted on at the next exit at the latest.
    private func kick() {
        guard started, state.withLock({ $0 }) != .finished else { return }
        _ = kvmrun_pthread_kill(UInt(thread), kvmrun_kick_signal())
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
