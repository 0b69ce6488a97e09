#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import VMM

@Suite("Event loop interest switch")
struct EventLoopInterestTests {
    @Test("a subscription with no events is not dispatched; switching on readable dispatches it, off again stops it")
    func pauseAndResume() throws {
        var fds: [Int32] = [-1, -1]
        #expect(pipe(&fds) == 0)
        defer { close(fds[0]); close(fds[1]) }
        #expect(write(fds[1], "x", 1) == 1)  // readable from now on (never read)
        let loop = try EventLoop()
        var calls = 0
        let token = try loop.subscribe(fd: fds[0], events: 0) { _ in calls += 1 }
        let interest = try #require(loop.interest(token))
        #expect(loop.interest(token + 1) == nil)

        // One round per idle call (timeout 0): paused, then on, then off again.
        var seen: [Int] = []
        var problem: Error?
        try loop.run(timeoutMilliseconds: 0) {
            seen.append(calls)
            do {
                switch seen.count {
                case 1: try interest.set(EventLoop.readable)
                case 2: try interest.set(0)
                default: loop.stop()
                }
            } catch {
                problem = error
                loop.stop()
            }
        }
        #expect(problem == nil)
        #expect(seen == [0, 1, 1])
    }
}
