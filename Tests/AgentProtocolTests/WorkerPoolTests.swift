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
