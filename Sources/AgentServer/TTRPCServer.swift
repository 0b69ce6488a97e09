#if canImport(Glibc)
import Glibc
#endif
#if canImport(FoundationEssentials)
import FoundationEssentials
#endif
import AgentProtocol
import CSocket
import Synchronization
import Sys

/// The guest side of ttRPC: services register typed handlers, then the server reads requests
/// from connected stream sockets (vsock in the guest, Unix sockets in tests) and answers them.
///
/// - Each request runs on a thread of a bounded pool, so handlers may block (WaitProcess,
///   ReadStdout) and many requests are in flight on one connection; responses go out in the
///   order handlers finish, each frame written whole under the connection's write lock.
/// - A request beyond `Limits.maxInFlight` is answered RESOURCE_EXHAUSTED, not queued.
/// - Unknown services and methods are answered UNIMPLEMENTED, naming what was asked for.
/// - Stream ids must be odd and increasing (`StreamIDRule`); a bad one, an undecodable
///   envelope, a data frame (only unary calls exist here) or an oversize frame is answered with
///   an error on that stream id, as containerd/ttrpc does, and the connection goes on.
/// - `timeout_nano` becomes `CallContext.deadline`: a request whose deadline passed before a
///   thread took it is answered DEADLINE_EXCEEDED without running; blocking handlers wait at
///   most until it (see `CallContext`).
/// - When the client disconnects, in-flight handlers see `context.isCancelled`; their answers
///   are dropped, and the fd is closed once the last of them has finished.
public final class TTRPCServer: Sendable {
    public struct Limits: Sendable {
        /// Requests running at once, over all connections (one pool thread each).
        public var maxInFlight = 64
        /// Idle pool threads kept for the next requests.
        public var keepIdleThreads = 4
        /// Stack of each pool thread (only the touched pages cost memory).
        public var threadStackBytes = 1 << 20
        /// Connections served at once by `serve(listener:)`; more are closed on arrival.
        public var maxConnections = 8
        /// Bytes asked of each read(2) of a connection.
        public var readChunk = 64 << 10
        /// A response write that makes no progress for this long (the client stopped reading)
        /// shuts the connection down.
        public var sendTimeout: Duration = .seconds(30)

        public init() {}
    }

    /// A request's payload in, the encoded response (or the error status) out.
    typealias Handler = @Sendable (_ payload: Data, _ context: CallContext) -> Result<[UInt8], RPCError>

    let limits: Limits
    let log: @Sendable (String) -> Void
    let pool: WorkerPool
    private let handlers = Mutex<[String: [String: Handler]]>([:])
    private let connections = Atomic<Int>(0)

    /// `log` receives one line per connection-level problem (read errors, truncated frames,
    /// refused connections); the default writes them to stderr.
    public init(limits: Limits = Limits(), log: @escaping @Sendable (String) -> Void = TTRPCServer.logToStderr) {
        self.limits = limits
        self.log = log
        pool = WorkerPool(maxThreads: limits.maxInFlight, keepIdle: limits.keepIdleThreads, stackBytes: limits.threadStackBytes)
    }

    public static let logToStderr: @Sendable (String) -> Void = { line in
        let bytes = Array("ttrpc server: \(line)\n".utf8)
        // SAFETY: writes the local array; a short or failed write of a log line is ignored.
        _ = bytes.withUnsafeBytes { write(STDERR_FILENO, $0.baseAddress, $0.count) }
    }

    /// Serves `method` with `handler`, replacing an earlier handler of the same method. A handler
    /// answers with its return value or by throwing: an `RPCError` goes to the client as it is,
    /// an `RPCStatusConvertible` error as its `rpcError`, a `SystemError` with a code from its
    /// errno, anything else as UNKNOWN with the error's description.
    public func register<Request, Response>(
        _ method: RPCMethod<Request, Response>,
        _ handler: @escaping @Sendable (Request, CallContext) throws -> Response
    ) {
        let name = method.name
        let erased: Handler = { payload, context in
            do {
                let request = try Envelope.decode(Request.self, from: payload, what: "\(name) request")
                let response = try handler(request, context)
                return .success(try Envelope.encode(response, what: "\(name) response"))
            } catch {
                return .failure(RPCError(describing: error))
            }
        }
        handlers.withLock { $0[method.service, default: [:]][method.name] = erased }
    }

    /// The services and methods with handlers, for diagnostics.
    public var registered: [String: [String]] {
        handlers.withLock { $0.mapValues { $0.keys.sorted() } }
    }

    /// The handler for a request, or UNIMPLEMENTED naming the unknown service or method.
    func route(service: String, method: String) -> Result<Handler, RPCError> {
        handlers.withLock { table in
            guard let methods = table[service] else {
                return .failure(RPCError(.unimplemented, "service \(service.debugDescription) is not served"))
            }
            guard let handler = methods[method] else {
                return .failure(RPCError(.unimplemented, "method \(method.debugDescription) of service \(service) is not served"))
            }
            return .success(handler)
        }
    }

    /// Serves one connected stream socket on the calling thread until the client closes it
    /// (or reading fails). Takes ownership of `connection`: it is closed once the last
    /// in-flight handler has answered.
    public func serve(connection: FileDescriptor) {
        ServerConnection(fd: connection, server: self).run()
    }

    /// Accepts connections on a listening stream socket and serves each on a thread of its own,
    /// at most `Limits.maxConnections` at once. Returns only when accept(2) fails in a way that
    /// retrying cannot fix (throws that error).
    public func serve(listener: FileDescriptor) throws(SystemError) {
        while true {
            let raw = kvmrun_accept_cloexec(listener.raw)
            guard raw >= 0 else {
                let code = errno
                switch code {
                case EINTR, ECONNABORTED, EAGAIN:
                    continue
                case EMFILE, ENFILE, ENOBUFS, ENOMEM:
                    log("accept: \(SystemError(call: "accept", errno: code)); retrying in 100 ms")
                    usleep(100_000)
                    continue
                default:
                    throw SystemError(call: "accept on the agent's listening socket", errno: code)
                }
            }
            let connection = FileDescriptor(raw)
            guard connections.add(1, ordering: .acquiringAndReleasing).newValue <= limits.maxConnections else {
                connections.subtract(1, ordering: .acquiringAndReleasing)
                log("refused a connection: \(limits.maxConnections) are already being served")
                connection.close()
                continue
            }
            do {
                try startThread("an agent connection") { [self] in
                    serve(connection: connection)
                    connections.subtract(1, ordering: .acquiringAndReleasing)
                }
            } catch {
                connections.subtract(1, ordering: .acquiringAndReleasing)
                log("\(error); connection closed")
                connection.close()
            }
        }
    }
}

/// An error type that knows which status it is on the wire (the agent's own errors adopt it).
public protocol RPCStatusConvertible: Error {
    var rpcError: RPCError { get }
}

extension RPCError {
    /// The status a handler's thrown error is answered with.
    init(describing error: any Error) {
        switch error {
        case let error as RPCError: self = error
        case let error as any RPCStatusConvertible: self = error.rpcError
        case let error as SystemError: self.init(Self.code(forErrno: error.errno), error.description)
        default: self.init(.unknown, "\(error)")
        }
    }

    static func code(forErrno errno: Int32) -> StatusCode {
        switch errno {
        case ENOENT, ESRCH, ENODEV, ENXIO: return .notFound
        case EEXIST: return .alreadyExists
        case EINVAL, E2BIG, ENAMETOOLONG, ENOTDIR, EISDIR: return .invalidArgument
        case EPERM, EACCES: return .permissionDenied
        case ETIMEDOUT: return .deadlineExceeded
        case ENOSPC, ENOMEM, EMFILE, ENFILE, EAGAIN: return .resourceExhausted
        case EBUSY: return .failedPrecondition
        case ENOSYS, EOPNOTSUPP: return .unimplemented
        default: return .internal
        }
    }
}
