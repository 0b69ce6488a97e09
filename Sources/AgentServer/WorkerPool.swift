import Sys

/// A bounded pool of pthreads for request handlers, which may block for long (WaitProcess,
/// ReadStdout). Threads are started on demand up to `maxThreads`; a job that finds every
/// thread busy is refused, never queued behind blocked handlers (the caller answers it
/// RESOURCE_EXHAUSTED). At most `keepIdle` idle threads stay parked for the next jobs; the
/// others end.
final class WorkerPool: @unchecked Sendable {
    typealias Job = @Sendable () -> Void

    let maxThreads: Int
    let keepIdle: Int
    let stackBytes: Int
    private let parking = Parking()
    // Guarded by `parking`.
    private var jobs: [Job] = []
    private var threads = 0
    private var idle = 0

    init(maxThreads: Int, keepIdle: Int, stackBytes: Int) {
        precondition(maxThreads > 0 && keepIdle >= 0)
        self.maxThreads = maxThreads
        self.keepIdle = min(keepIdle, maxThreads)
        self.stackBytes = stackBytes
    }

    /// Threads alive now (busy or idle).
    var threadCount: Int { parking.withLock { _ in threads } }

    /// Runs `job` on a pool thread. Returns false, without running it, when all `maxThreads`
    /// threads are busy or a new thread cannot start.
    func submit(_ job: @escaping Job) -> Bool {
        enum Plan { case queued, newThread, refused }
        let plan: Plan = parking.withLock { _ in
            // An idle thread not yet claimed by an earlier job takes it.
            if idle > jobs.count {
                jobs.append(job)
                return .queued
            }
            guard threads < maxThreads else { return .refused }
            threads += 1
            return .newThread
        }
        switch plan {
        case .refused:
            return false
        case .queued:
            parking.wakeOne()
            return true
        case .newThread:
            do {
                try startThread("an agent request worker", stackBytes: stackBytes) { [self] in
                    job()
                    work()
                }
                return true
            } catch {
                parking.withLock { _ in threads -= 1 }
                return false
            }
        }
    }

    /// A thread's loop after its first job: the next queued job, or park, or end.
    private func work() {
        while let job = nextJob() { job() }
    }

    private func nextJob() -> Job? {
        parking.withLock { wait in
            while true {
                if !jobs.isEmpty { return jobs.removeFirst() }
                if idle >= keepIdle {
                    threads -= 1
                    return nil
                }
                idle += 1
                wait()
                idle -= 1
            }
        }
    }
}
