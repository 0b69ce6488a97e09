/// The server's rule for client-initiated streams, as containerd/ttrpc enforces it: a request
/// frame's stream id must be odd and greater than every id seen before on the connection.
/// A refused frame is answered with INVALID_ARGUMENT on that same stream id (so the client
/// learns which id was bad) and the connection goes on.
public struct StreamIDRule: Sendable {
    /// The highest stream id accepted so far (0 before the first request).
    public private(set) var last: UInt32 = 0

    public init() {}

    /// Accepts `id` for a new request stream, or returns the error to answer it with.
    public mutating func admit(_ id: UInt32) -> RPCError? {
        guard id % 2 == 1 else {
            return RPCError(.invalidArgument, "stream id \(id) is even: client-initiated streams must be odd")
        }
        guard id > last else {
            return RPCError(.invalidArgument, "stream id \(id) reused or lower than \(last): stream ids must increase")
        }
        last = id
        return nil
    }
}

/// The client's side of the same rule: 1, 3, 5, ... until the ids run out.
public struct StreamIDAllocator: Sendable {
    private var upcoming: UInt32 = 1
    private var exhausted = false

    public init() {}

    /// The next id, or nil once 2^31 streams have been opened on the connection.
    public mutating func next() -> UInt32? {
        guard !exhausted else { return nil }
        let id = upcoming
        if upcoming == UInt32.max { exhausted = true } else { upcoming += 2 }
        return id
    }
}
