#if canImport(Glibc)
import Glibc
#endif
import CKVM
import KVM
import Synchronization

/// A vCPU's own OS thread (never the Swift concurrency pool) running KVM_RUN in a loop, as an
/// explicit state machine: created → running → finished. `stop()` moves a running vCPU out of
/// KVM_RUN promptly (immediate_exit plus a kick signal) and the loop then finishes.
final class VcpuThread: @unchecked Sendable {
    enum State: Equatable { case created, running, finished }

    let vcpu: VCPU
    private let body: @Sendable (VCPU, _ shouldStop: () -> Bool) -> Void
    private let state = Mutex<State>(.created)
    private let stopRequested = Atomic<Bool>(false)
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

    func start() throws(VMMError) {
        let box = Unmanaged.passRetained(self)
        let result = pthread_create(&thread, nil, { argument in
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
        state.withLock { $0 = .running }
        // If stop() came before this thread ran, KVM_RUN must not block.
        if stopRequested.load(ordering: .acquiring) { vcpu.requestImmediateExit() }
        body(vcpu) { stopRequested.load(ordering: .acquiring) }
        state.withLock { $0 = .finished }
    }

    /// Asks the loop to finish and kicks it out of KVM_RUN. Safe from any thread, repeatable.
    func stop() {
        stopRequested.store(true, ordering: .releasing)
        vcpu.requestImmediateExit()
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
