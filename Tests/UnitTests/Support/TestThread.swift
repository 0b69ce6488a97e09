#if canImport(Glibc)
import Glibc
#endif

/// A pthread running `body` (the tests have no Foundation), for playing the event loop or a
/// second vCPU beside the test's own thread.
final class TestThread {
    private final class Box {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }

    private var thread = pthread_t()

    init(_ body: @escaping @Sendable () -> Void) {
        let box = Unmanaged.passRetained(Box(body))
        let result = pthread_create(&thread, nil, { argument in
            // SAFETY: argument is the retained Box passed below; released here, once.
            let box = Unmanaged<Box>.fromOpaque(argument!).takeRetainedValue()
            box.body()
            return nil
        }, box.toOpaque())
        precondition(result == 0, "pthread_create: \(result)")
    }

    func join() { pthread_join(thread, nil) }
}

/// Polls `condition` every millisecond for up to `milliseconds`; true once it holds.
func eventually(within milliseconds: Int = 10_000, _ condition: () -> Bool) -> Bool {
    for _ in 0..<milliseconds {
        if condition() { return true }
        usleep(1000)
    }
    return condition()
}
