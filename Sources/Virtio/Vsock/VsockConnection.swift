import Sys

/// A stream's identity: the host-side port and the guest's port.
struct VsockKey: Hashable, Comparable {
    var local: UInt32
    var peer: UInt32

    static func < (lhs: VsockKey, rhs: VsockKey) -> Bool {
        (lhs.local, lhs.peer) < (rhs.local, rhs.peer)
    }
}

/// Credit-based flow control of one stream (virtio 1.x, 5.10.6.3), both directions. Counters
/// are free-running u32 values, compared with wrapping arithmetic as the spec intends.
struct VsockCredit: Equatable {
    /// The receive buffer we advertise per stream: bytes the guest may have in flight to us.
    static let bufferSize: UInt32 = 256 * 1024

    /// The guest's receive buffer and how much of what we sent it has consumed.
    var peerBufAlloc: UInt32 = 0
    var peerFwdCnt: UInt32 = 0
    /// Payload bytes sent to the guest.
    var txCnt: UInt32 = 0
    /// Payload bytes received from the guest, and how many of them reached the host socket.
    var rxCnt: UInt32 = 0
    var fwdCnt: UInt32 = 0
    /// The fwd_cnt the guest last heard from us.
    var advertisedFwdCnt: UInt32 = 0

    /// Takes the guest's buf_alloc and fwd_cnt from any packet it sent on this stream.
    mutating func update(from header: VsockHeader) {
        peerBufAlloc = header.bufAlloc
        peerFwdCnt = header.fwdCnt
    }

    /// Bytes the guest can still take: never send it more.
    var peerFree: UInt32 {
        let inFlight = txCnt &- peerFwdCnt
        return inFlight >= peerBufAlloc ? 0 : peerBufAlloc - inFlight
    }

    /// Whether the guest stayed within our advertised buffer by sending `length` more bytes.
    func guestMaySend(_ length: UInt32) -> Bool {
        UInt64(rxCnt &- fwdCnt) + UInt64(length) <= UInt64(VsockCredit.bufferSize)
    }

    /// Whether the guest should hear about forwarded bytes before it runs out of credit.
    var updateDue: Bool { fwdCnt &- advertisedFwdCnt >= VsockCredit.bufferSize / 4 }

    /// Puts our buf_alloc and fwd_cnt into an outgoing header.
    mutating func stamp(_ header: inout VsockHeader) {
        header.bufAlloc = VsockCredit.bufferSize
        header.fwdCnt = fwdCnt
        advertisedFwdCnt = fwdCnt
    }
}

/// Bytes from the guest waiting for the host socket to take them.
struct ByteQueue {
    private var storage: [UInt8] = []
    private var start = 0

    var count: Int { storage.count - start }
    var isEmpty: Bool { count == 0 }
    var pending: ArraySlice<UInt8> { storage[start...] }

    mutating func append(_ bytes: [UInt8]) { storage += bytes }

    mutating func consume(_ count: Int) {
        start += count
        if start == storage.count {
            storage.removeAll(keepingCapacity: true)
            start = 0
        } else if start > 64 * 1024 && start > storage.count / 2 {
            storage.removeSubrange(0..<start)
            start = 0
        }
    }
}

/// One stream between a guest socket and a host Unix socket.
final class VsockConnection {
    enum State {
        /// Host-initiated: REQUEST sent to the guest, waiting for its RESPONSE.
        case connecting
        case established
    }

    let key: VsockKey
    let stream: FileDescriptor
    let token: UInt64
    var state: State
    var credit = VsockCredit()
    var toHost = ByteQueue()
    /// The host socket may have data (edge seen, EAGAIN not yet); it may take more data.
    var hostReadable = false
    var hostWritable = true
    /// The host side reached end of stream (we sent SHUTDOWN with SEND to the guest).
    var hostEnded = false
    /// We shut the host socket's write side (the guest will send no more).
    var hostWriteClosed = false
    /// SHUTDOWN flags the guest sent.
    var peerShutdown: UInt32 = 0
    var creditUpdateQueued = false

    init(key: VsockKey, stream: FileDescriptor, token: UInt64, state: State) {
        self.key = key
        self.stream = stream
        self.token = token
        self.state = state
    }

    /// Whether the device should read the host socket for the guest now.
    var wantsToSend: Bool {
        state == .established && hostReadable && !hostEnded
            && peerShutdown & VsockHeader.Shutdown.receive == 0 && credit.peerFree > 0
    }
}
