#if canImport(Glibc)
import Glibc
#endif
import CKVM
import KVM
import Memory
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

    /// `inc word [0x2000]; jmp short -6`: the guest counts forever at 0x2000 without exiting.
    static let countingGuest: [UInt8] = [0xFF, 0x06, 0x00, 0x20, 0xEB, 0xFA]

    /// Polls `condition` every millisecond for up to `milliseconds`; true once it holds.
    func eventually(within milliseconds: Int = 10_000, _ condition: () -> Bool) -> Bool {
        for _ in 0..<milliseconds {
            if condition() { return true }
            usleep(1000)
        }
        return condition()
    }

    @Test("pause() parks a spinning vCPU (its counter stops), resume() lets it count on, stop() ends a parked one")
    func pauseResume() throws {
        let guest = try RealModeGuest(code: VcpuThreadTests.countingGuest)
        VcpuThread.installKickHandler()
        let thread = VcpuThread(vcpu: guest.vcpu) { vcpu, shouldStop in
            while !shouldStop() { _ = try? vcpu.runOnce() }
        }
        let parks = Counter()
        thread.onParked = { parks.increment() }
        let count = { (try? guest.memory.load(UInt16.self, at: GuestAddress(0x2000))) ?? 0 }
        try thread.start()
        #expect(eventually { count() > 0 }, "the guest never counted")

        thread.pause()
        #expect(eventually { thread.currentState == .paused }, "the vCPU did not park")
        let frozen = count()
        usleep(200_000)
        #expect(count() == frozen, "the guest kept counting while paused")
        #expect(parks.value == 1)

        thread.resume()
        #expect(eventually { count() != frozen }, "the guest did not count on after resume")
        #expect(thread.currentState == .running)

        thread.pause()
        #expect(eventually { thread.currentState == .paused })
        #expect(parks.value == 2)
        thread.stop()
        #expect(thread.join(timeoutMilliseconds: 5000), "a parked vCPU did not finish on stop()")
    }
}

extension VcpuThreadTests {
    @Test("a kick that lands between two KVM_RUNs is not lost: the next KVM_RUN returns at once")
    func kickBetweenRuns() throws {
        let guest = try RealModeGuest(code: [0xEB, 0xFE])  // jmp $
        VcpuThread.installKickHandler()
        let result = Counter()
        let thread = VcpuThread(vcpu: guest.vcpu) { vcpu, _ in
            // The kick arrives while this thread is not in KVM_RUN (here, at once: a signal
            // to oneself is delivered before pthread_kill returns). Its handler must leave
            // immediate_exit set, or the KVM_RUN below spins in the guest until stopped.
            _ = kvmrun_pthread_kill(UInt(pthread_self()), kvmrun_kick_signal())
            if case .interrupted? = try? vcpu.runOnce() { result.increment() }
        }
        try thread.start()
        let prompt = eventually(within: 3000) { thread.currentState == .finished }
        thread.stop()  // the watchdog: gets a spinning vCPU out if the kick was lost
        #expect(thread.join(timeoutMilliseconds: 5000))
        #expect(prompt, "KVM_RUN ran the guest after the kick (the kick was lost)")
        #expect(result.value == 1, "KVM_RUN did not report the kick as an interruption")
    }

    @Test("500 pauses of a spinning vCPU, half of them right after a resume: every one parks it")
    func manyPauses() throws {
        let guest = try RealModeGuest(code: VcpuThreadTests.countingGuest)
        VcpuThread.installKickHandler()
        let thread = VcpuThread(vcpu: guest.vcpu) { vcpu, shouldStop in
            while !shouldStop() { _ = try? vcpu.runOnce() }
        }
        let count = { (try? guest.memory.load(UInt16.self, at: GuestAddress(0x2000))) ?? 0 }
        /// Polls every 100 µs for up to 5 s.
        func soon(_ condition: () -> Bool) -> Bool {
            for _ in 0..<50_000 {
                if condition() { return true }
                usleep(100)
            }
            return condition()
        }
        try thread.start()
        defer {
            thread.stop()
            _ = thread.join(timeoutMilliseconds: 5000)
        }
        #expect(soon { count() > 0 }, "the guest never counted")
        var missed: Int?
        for cycle in 0..<500 {
            thread.pause()
            guard soon({ thread.currentState == .paused }) else {
                missed = cycle
                break
            }
            let frozen = count()
            thread.resume()
            // Every other cycle pauses again at once, while the thread may still be leaving
            // the park; the others first see the guest run again.
            if cycle % 2 == 0, !soon({ count() != frozen }) {
                Issue.record("cycle \(cycle): the guest did not run after resume")
                break
            }
        }
        #expect(missed == nil, "pause \(missed ?? -1) was missed: the vCPU kept running")
        thread.pause()
        #expect(soon { thread.currentState == .paused })
        let frozen = count()
        usleep(20_000)
        #expect(count() == frozen, "the guest counted while paused")
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
