#if canImport(Glibc)
import Glibc
#endif
import CKVM
import KVM
import Testing
@testable import VMM

@Suite("vCPU threads")
struct VcpuThreadTests {
    @Test("stop() gets a vCPU spinning in the guest out of KVM_RUN, even if its creator blocked every signal")
    func stopSpinningGuest() throws {
        let guest = try RealModeGuest(code: [
            0xEB, 0xFE,  // jmp $ (spin forever)
        ])
        VcpuThread.installKickHandler()
        let entries = Counter()
        let thread = VcpuThread(vcpu: guest.vcpu) { vcpu, shouldStop in
            while !shouldStop() {
                entries.increment()
                _ = try? vcpu.runOnce()
            }
        }
        // Start the thread with every signal blocked, as a dispatch worker thread would.
        var all = sigset_t(), previous = sigset_t()
        sigfillset(&all)
        pthread_sigmask(SIG_BLOCK, &all, &previous)
        try thread.start()
        pthread_sigmask(SIG_SETMASK, &previous, nil)
        usleep(200_000)
        thread.stop()
        #expect(thread.join(timeoutMilliseconds: 5000), "the vCPU thread did not leave KVM_RUN")
        #expect(entries.value >= 1)
    }
}

final class Counter: @unchecked Sendable {
    private let lock = TestMutex()
    private(set) var value = 0
    func increment() { lock.withLock { value += 1 } }
}

/// A pthread mutex for the test's counter (no Foundation in the tests' dependencies).
final class TestMutex: @unchecked Sendable {
    private var mutex = pthread_mutex_t()
    init() { pthread_mutex_init(&mutex, nil) }
    func withLock<T>(_ body: () -> T) -> T {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return body()
    }
}
