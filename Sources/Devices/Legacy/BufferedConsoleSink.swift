#if canImport(Glibc)
import Glibc
#endif
import CKVM
import Synchronization

/// Console bytes for a file descriptor that may stall (a pipe nobody reads, a terminal on
/// XOFF): the vCPU thread that writes the UART never blocks. Bytes go straight to the
/// descriptor while it takes them (a prompt without a newline shows at once); when it would
/// block they wait in a bounded buffer that the event loop drains once the descriptor is
/// writable (`connect`, `drain`); bytes beyond the bound are dropped and counted.
///
/// Writes must not block, but the descriptor is shared with whoever started kvmrun (its
/// stdout), so its O_NONBLOCK flag is left alone: a pipe, FIFO or terminal is opened again
/// through /proc/self/fd with O_NONBLOCK (a description of our own), a socket is written with
/// MSG_DONTWAIT, and a regular file, where write(2) does not stall, is written as it is.
public final class BufferedConsoleSink: ConsoleSink, @unchecked Sendable {
    public static let defaultCapacity = 1 << 20

    enum Writer {
        case plain(Int32)
        case nonBlocking(Int32)
        case socket(Int32)

        var fd: Int32 {
            switch self {
            case let .plain(fd), let .nonBlocking(fd), let .socket(fd): fd
            }
        }
    }

    enum WriteResult { case wrote(Int), wouldBlock, failed }

    struct State {
        /// Ring storage, allocated the first time the descriptor stalls.
        var ring: [UInt8] = []
        var head = 0
        var count = 0
        var written: UInt64 = 0
        var dropped: UInt64 = 0
        /// The descriptor failed for good (closed pipe, EBADF): everything is dropped from now on.
        var failed = false
        var watching = false
        var watch: (@Sendable (Bool) -> Void)?
    }

    public let capacity: Int
    private let writer: Writer
    /// The descriptor opened here (closed with the sink), if any.
    private let ownFD: Int32?
    private let state = Mutex(State())

    /// A sink for `fd`, which stays open and owned by the caller.
    public init(fd: Int32, capacity: Int = BufferedConsoleSink.defaultCapacity) {
        self.capacity = max(1, capacity)
        var info = stat()
        let kind = fstat(fd, &info) == 0 ? info.st_mode & S_IFMT : 0
        if kind == S_IFREG {
            writer = .plain(fd)
            ownFD = nil
        } else if kind == S_IFSOCK {
            writer = .socket(fd)
            ownFD = nil
        } else {
            let own = open("/proc/self/fd/\(fd)", O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)
            writer = own >= 0 ? .nonBlocking(own) : .plain(fd)
            ownFD = own >= 0 ? own : nil
        }
    }

    deinit {
        if let ownFD { close(ownFD) }
    }

    /// The descriptor to watch for writability (EPOLLOUT), or nil when writes never wait.
    public var pollFD: Int32? {
        if case .plain = writer { return nil }
        return writer.fd
    }

    /// Whether the descriptor failed for good (its reader went away): nothing more to watch.
    public var hasFailed: Bool { state.withLock { $0.failed } }

    /// Bytes written, dropped, and waiting in the buffer, for the control API's metrics.
    public var counters: [String: UInt64] {
        state.withLock { ["console_bytes": $0.written, "console_dropped_bytes": $0.dropped, "console_buffered_bytes": UInt64($0.count)] }
    }

    /// Gives the sink the event loop's switch for watching `pollFD` (true: call `drain()` when
    /// it is writable). Called under the sink's lock, so it must not block.
    public func connect(_ watch: @escaping @Sendable (Bool) -> Void) {
        state.withLock { state in
            state.watch = watch
            if state.watching { watch(true) }
        }
    }

    public func write(_ byte: UInt8) {
        state.withLock { state in
            if state.failed {
                state.dropped &+= 1
                return
            }
            if state.count == 0 {
                let result = withUnsafeBytes(of: byte) { attempt($0) }
                switch result {
                case .wrote:
                    state.written &+= 1
                    return
                case .wouldBlock:
                    break
                case .failed:
                    state.failed = true
                    state.dropped &+= 1
                    return
                }
            }
            guard state.count < capacity else {
                state.dropped &+= 1
                return
            }
            if state.ring.isEmpty { state.ring = [UInt8](repeating: 0, count: capacity) }
            state.ring[(state.head + state.count) % capacity] = byte
            state.count += 1
            setWatching(&state, true)
        }
    }

    /// Writes what the descriptor takes of the buffer (the event loop calls it when the
    /// descriptor is writable); stops watching once the buffer is empty.
    public func drain() {
        state.withLock { state in flush(&state) }
    }

    /// At exit: drains for up to `timeoutMilliseconds` while the descriptor takes bytes, then
    /// counts what is left as dropped. Returns the bytes dropped in all.
    @discardableResult
    public func finish(timeoutMilliseconds: Int32) -> UInt64 {
        let deadline = kvmrun_monotonic_ns() + UInt64(max(0, timeoutMilliseconds)) * 1_000_000
        while state.withLock({ state in flush(&state); return state.count > 0 }) {
            let now = kvmrun_monotonic_ns()
            guard now < deadline else { break }
            var poller = pollfd(fd: writer.fd, events: Int16(POLLOUT), revents: 0)
            _ = poll(&poller, 1, Int32(min(100, (deadline - now) / 1_000_000 + 1)))
        }
        return state.withLock { state in
            state.dropped &+= UInt64(state.count)
            state.count = 0
            setWatching(&state, false)
            return state.dropped
        }
    }

    private func flush(_ state: inout State) {
        while state.count > 0 {
            let run = min(state.count, capacity - state.head)
            let result = state.ring.withUnsafeBytes { ring in
                // SAFETY: head + run <= capacity == ring.count.
                attempt(UnsafeRawBufferPointer(rebasing: ring[state.head..<(state.head + run)]))
            }
            switch result {
            case let .wrote(count):
                state.written &+= UInt64(count)
                state.head = (state.head + count) % capacity
                state.count -= count
            case .wouldBlock:
                return
            case .failed:
                state.failed = true
                state.dropped &+= UInt64(state.count)
                state.count = 0
            }
        }
        setWatching(&state, false)
    }

    private func setWatching(_ state: inout State, _ enabled: Bool) {
        guard state.watching != enabled else { return }
        state.watching = enabled
        state.watch?(enabled)
    }

    /// One write(2)/send(2) of `bytes` that never blocks (but for a regular file).
    private func attempt(_ bytes: UnsafeRawBufferPointer) -> WriteResult {
        while true {
            let count: Int
            switch writer {
            case let .plain(fd), let .nonBlocking(fd):
                // SAFETY: writes at most bytes.count bytes from the caller's buffer.
                count = Glibc.write(fd, bytes.baseAddress, bytes.count)
            case let .socket(fd):
                // SAFETY: as above.
                count = send(fd, bytes.baseAddress, bytes.count, Int32(MSG_DONTWAIT | MSG_NOSIGNAL))
            }
            if count > 0 { return .wrote(count) }
            if count == 0 { return .wouldBlock }
            switch errno {
            case EINTR: continue
            case EAGAIN: return .wouldBlock
            default: return .failed
            }
        }
    }
}
