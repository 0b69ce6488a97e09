#if canImport(Glibc)
import Glibc
#endif
@testable import AgentServer
import Synchronization
import Sys
import Testing

@Suite("agent server: worker pool")
struct WorkerPoolTests {
    @Test("grows to maxThreads, refuses beyond, runs queued jobs on idle threads, shrinks to keepIdle")
    func bounds() throws {
        let pool = WorkerPool(maxThreads: 8, keepIdle: 2, stackBytes: 256 << 10)
        let release = Latch(1)
        let running = Latch(8)
        for _ in 0..<8 {
            #expect(pool.submit {
                running.countDown()
                _ = release.wait(timeout: .seconds(10))
            })
        }
        #expect(running.wait(timeout: .seconds(10)))
        #expect(pool.threadCount == 8)
        #expect(!pool.submit {}, "a ninth job was taken by a full pool")
        release.countDown()
        // Idle threads beyond keepIdle end.
        let deadline = MonotonicClock.deadline(after: .seconds(10))
        while pool.threadCount > 2 && MonotonicClock.now < deadline { usleep(1000) }
        #expect(pool.threadCount == 2)
        // The kept threads take new jobs without new threads.
        let ran = Latch(50)
        for _ in 0..<50 {
            while !pool.submit({ ran.countDown() }) { usleep(100) }
        }
        #expect(ran.wait(timeout: .seconds(10)))
        #expect(pool.threadCount <= 8)
    }
}

@Suite("Sys: monotonic deadlines")
struct MonotonicClockTests {
    @Test("durations in nanoseconds saturate instead of trapping; deadlines never wrap")
    func saturating() {
        #expect(MonotonicClock.nanoseconds(.milliseconds(1500)) == 1_500_000_000)
        #expect(MonotonicClock.nanoseconds(.nanoseconds(7)) == 7)
        #expect(MonotonicClock.nanoseconds(.seconds(Int64.max)) == Int64.max)
        #expect(MonotonicClock.nanoseconds(.seconds(Int64.min)) == Int64.min)
        #expect(MonotonicClock.deadline(after: .seconds(Int64.max)) == Int64.max)
        let now = MonotonicClock.now
        let soon = MonotonicClock.deadline(after: .seconds(1))
        #expect(soon - now >= 1_000_000_000 && soon - now < 2_000_000_000)
    }
}
