#if canImport(Glibc)
import Glibc
#endif
import Sys

/// The host side of hybrid vsock (Firecracker's model): the VM's Unix socket at `udsPath` for
/// host-initiated streams (`CONNECT <port>\n` → `OK <hostport>\n`), and `<udsPath>_<port>` for
/// streams the guest opens to CID 2. Owns the connection table, turns guest packets into socket
/// operations and host socket data into packets. Not thread-safe: the device calls it under its
/// lock. Everything here is non-blocking.
final class VsockMuxer {
    /// Streams and not-yet-identified host clients, together.
    static let maxConnections = 1024
    /// Control packets waiting for rx buffers; the device stops taking tx packets above this.
    static let maxPendingControl = 2048
    static let listenerToken: UInt64 = 0
    /// First port handed to host-initiated streams (as Firecracker does).
    static let firstLocalPort: UInt32 = 1 << 30
    static let maxCommandLine = 32

    enum Owner {
        case client(FileDescriptor, [UInt8])
        case connection(VsockKey)
    }

    let cid: UInt64
    let udsPath: String
    let poller: VsockPoller
    private let listener: FileDescriptor
    private(set) var connections: [VsockKey: VsockConnection] = [:]
    private var owners: [UInt64: Owner] = [:]
    private var control = PacketFIFO<VsockHeader>()
    private var nextToken: UInt64 = 1
    private var nextLocalPort = VsockMuxer.firstLocalPort
    private var lastServed: VsockKey?
    private(set) var counters = CounterSet()

    init(cid: UInt64, udsPath: String) throws(SystemError) {
        self.cid = cid
        self.udsPath = udsPath
        poller = try VsockPoller()
        listener = try UnixStream.listen(path: udsPath)
        SocketFiles.register(udsPath)
        try poller.add(listener, token: VsockMuxer.listenerToken, events: VsockPoller.readable)
    }

    deinit {
        SocketFiles.remove(udsPath)
    }

    var pendingControlCount: Int { control.count }
    /// Room the control queue's storage holds (for tests: bounded by what is pending).
    var controlCapacity: Int { control.capacity }
    var acceptsGuestPackets: Bool { pendingControlCount < VsockMuxer.maxPendingControl }

    private func count(_ name: String, _ amount: UInt64 = 1) { counters.add(name, amount) }

    // MARK: guest → host

    /// Acts on one packet from the guest's tx queue (header already checked for size).
    func handleGuestPacket(_ header: VsockHeader, payload: [UInt8]) {
        guard header.srcCID == cid, header.dstCID == VsockHeader.hostCID else {
            count("dropped_packets")  // not addressed from this guest to the host: nobody to answer
            return
        }
        let key = VsockKey(local: header.dstPort, peer: header.srcPort)
        guard header.type == VsockHeader.Kind.stream, let op = header.knownOp else {
            if header.op != VsockHeader.Op.rst.rawValue { queueReset(answering: header) }
            return
        }
        if op == .request {
            openGuestStream(header, key: key)
            return
        }
        guard let connection = connections[key] else {
            if op != .rst { queueReset(answering: header) }
            return
        }
        connection.credit.update(from: header)
        switch op {
        case .request:
            break
        case .response:
            guard connection.state == .connecting else { return reset(connection) }
            connection.state = .established
            let line = Array("OK \(key.local)\n".utf8)
            guard UnixStream.write(connection.stream, line[...]) == .wrote(line.count) else { return reset(connection) }
        case .rw:
            guard connection.state == .established, connection.peerShutdown & VsockHeader.Shutdown.send == 0 else {
                count("unexpected_data")
                return reset(connection)
            }
            guard connection.credit.guestMaySend(header.length) else {
                count("credit_violations")
                return reset(connection)
            }
            connection.toHost.append(payload)
            connection.credit.rxCnt &+= UInt32(payload.count)
            count("bytes_to_host", UInt64(payload.count))
            flush(connection)
        case .creditUpdate:
            break
        case .creditRequest:
            queueCreditUpdate(connection)
        case .shutdown:
            connection.peerShutdown |= header.flags & VsockHeader.Shutdown.both
            flush(connection)
        case .rst:
            close(connection)
        }
    }

    /// A guest REQUEST to CID 2 port P: connect to `<uds>_<P>`, answer RESPONSE or RST.
    private func openGuestStream(_ header: VsockHeader, key: VsockKey) {
        if let existing = connections[key] { return reset(existing) }
        guard owners.count < VsockMuxer.maxConnections,
              let stream = try? UnixStream.connect(path: "\(udsPath)_\(key.local)") else {
            count("refused_requests")
            return queueReset(answering: header)
        }
        let connection = VsockConnection(key: key, stream: stream, token: takeToken(), state: .established)
        guard register(connection) else { return queueReset(answering: header) }
        connection.credit.update(from: header)
        queue(VsockHeader(srcCID: VsockHeader.hostCID, dstCID: cid, srcPort: key.local, dstPort: key.peer, op: .response))
    }

    /// Writes what the host socket takes of the guest's data; completes shutdowns once empty.
    private func flush(_ connection: VsockConnection) {
        while !connection.toHost.isEmpty && connection.hostWritable {
            switch UnixStream.write(connection.stream, connection.toHost.pending) {
            case let .wrote(written):
                connection.toHost.consume(written)
                connection.credit.fwdCnt &+= UInt32(written)
            case .wouldBlock:
                connection.hostWritable = false
            case .failed:
                return reset(connection)
            }
        }
        if connection.credit.updateDue { queueCreditUpdate(connection) }
        guard connection.toHost.isEmpty else { return }
        if connection.peerShutdown == VsockHeader.Shutdown.both {
            return reset(connection)
        }
        if connection.peerShutdown & VsockHeader.Shutdown.send != 0 && !connection.hostWriteClosed {
            connection.hostWriteClosed = true
            _ = shutdown(connection.stream.raw, Int32(SHUT_WR))
        }
    }

    // MARK: host → guest

    /// The next packet for the guest: queued control packets first, then data read from a host
    /// socket (round-robin over streams, at most `maxPayload` bytes and the guest's credit).
    func nextPacket(maxPayload: Int) -> (VsockHeader, [UInt8])? {
        while true {
            if var header = control.popFirst() {
                let key = VsockKey(local: header.srcPort, peer: header.dstPort)
                if let connection = connections[key] {
                    connection.credit.stamp(&header)
                    if header.knownOp == .creditUpdate { connection.creditUpdateQueued = false }
                } else if header.knownOp != .rst {
                    continue  // the stream closed since this was queued; its RST is queued too
                }
                return (header, [])
            }
            guard let connection = nextSender() else { return nil }
            lastServed = connection.key
            let limit = min(maxPayload, Int(connection.credit.peerFree))
            switch UnixStream.read(connection.stream, limit: limit) {
            case let .data(bytes):
                var header = VsockHeader(srcCID: VsockHeader.hostCID, dstCID: cid, srcPort: connection.key.local,
                                         dstPort: connection.key.peer, length: UInt32(bytes.count), op: .rw)
                connection.credit.stamp(&header)
                connection.credit.txCnt &+= UInt32(bytes.count)
                count("bytes_to_guest", UInt64(bytes.count))
                return (header, bytes)
            case .wouldBlock:
                connection.hostReadable = false
            case .endOfStream:
                connection.hostEnded = true
                queue(VsockHeader(srcCID: VsockHeader.hostCID, dstCID: cid, srcPort: connection.key.local,
                                  dstPort: connection.key.peer, op: .shutdown, flags: VsockHeader.Shutdown.send))
            case .failed:
                reset(connection)
            }
        }
    }

    /// The stream after the last one served (in key order) that can send to the guest now.
    private func nextSender() -> VsockConnection? {
        var first: VsockConnection?
        var after: VsockConnection?
        for connection in connections.values where connection.wantsToSend {
            if first.map({ connection.key < $0.key }) ?? true { first = connection }
            if let lastServed, connection.key > lastServed, after.map({ connection.key < $0.key }) ?? true {
                after = connection
            }
        }
        return after ?? first
    }

    // MARK: host events

    /// Drains the poller (a few batches at most; the rest stays ready in it and the event loop
    /// comes back): accepts clients, reads their CONNECT lines, notes socket readiness.
    func handleHostEvents() {
        for (token, events) in poller.wait(batches: VsockPoller.batchesPerWake) {
            if token == VsockMuxer.listenerToken {
                acceptClients()
                continue
            }
            switch owners[token] {
            case let .client(stream, line):
                readCommand(token: token, stream: stream, line: line)
            case let .connection(key):
                guard let connection = connections[key] else { continue }
                let failure = VsockPoller.error | VsockPoller.hangUp
                if events & (VsockPoller.readable | VsockPoller.readHangUp | failure) != 0 { connection.hostReadable = true }
                if events & (VsockPoller.writable | failure) != 0 {
                    connection.hostWritable = true
                    flush(connection)
                }
            case nil:
                continue
            }
        }
    }

    private func acceptClients() {
        while let stream = UnixStream.accept(listener) {
            guard owners.count < VsockMuxer.maxConnections else {
                count("refused_clients")
                continue  // closed when `stream` goes away
            }
            let token = takeToken()
            // Writable too: the same registration serves the stream once CONNECT turns it into one.
            let events = VsockPoller.readable | VsockPoller.writable | VsockPoller.readHangUp
            guard (try? poller.add(stream, token: token, events: events)) != nil else {
                continue
            }
            owners[token] = .client(stream, [])
            readCommand(token: token, stream: stream, line: [])
        }
    }

    /// Reads a client's `CONNECT <port>\n` one byte at a time (so no stream data is consumed),
    /// then sends the guest a REQUEST. Anything else closes the client.
    private func readCommand(token: UInt64, stream: FileDescriptor, line: [UInt8]) {
        var line = line
        while true {
            switch UnixStream.read(stream, limit: 1) {
            case let .data(bytes):
                if bytes[0] != UInt8(ascii: "\n") {
                    line += bytes
                    if line.count > VsockMuxer.maxCommandLine { return dropClient(token, stream) }
                    continue
                }
                guard let port = VsockMuxer.parseConnect(line) else { return dropClient(token, stream) }
                let key = VsockKey(local: takeLocalPort(), peer: port)
                let connection = VsockConnection(key: key, stream: stream, token: token, state: .connecting)
                connections[key] = connection
                owners[token] = .connection(key)
                queue(VsockHeader(srcCID: VsockHeader.hostCID, dstCID: cid, srcPort: key.local, dstPort: port, op: .request))
                return
            case .wouldBlock:
                owners[token] = .client(stream, line)
                return
            case .endOfStream, .failed:
                return dropClient(token, stream)
            }
        }
    }

    /// The port of a `CONNECT <port>` line, or nil. Like Firecracker, the verb's case and the
    /// spacing do not matter (a trailing CR is spacing too).
    static func parseConnect(_ line: [UInt8]) -> UInt32? {
        let words = String(decoding: line, as: UTF8.self).split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" })
        guard words.count == 2, words[0].lowercased() == "connect",
              words[1].allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        return UInt32(words[1])
    }

    private func dropClient(_ token: UInt64, _ stream: FileDescriptor) {
        poller.remove(stream)
        owners[token] = nil
        stream.close()
    }

    // MARK: bookkeeping

    private func takeToken() -> UInt64 {
        defer { nextToken += 1 }
        return nextToken
    }

    private func takeLocalPort() -> UInt32 {
        while true {
            let port = nextLocalPort
            nextLocalPort = nextLocalPort == UInt32.max - 1 ? VsockMuxer.firstLocalPort : nextLocalPort + 1
            if !connections.keys.contains(where: { $0.local == port }) { return port }
        }
    }

    private func register(_ connection: VsockConnection) -> Bool {
        let events = VsockPoller.readable | VsockPoller.writable | VsockPoller.readHangUp
        guard (try? poller.add(connection.stream, token: connection.token, events: events)) != nil else { return false }
        connections[connection.key] = connection
        owners[connection.token] = .connection(connection.key)
        return true
    }

    private func queue(_ header: VsockHeader) { control.append(header) }

    private func queueReset(answering header: VsockHeader) {
        count("resets_sent")
        queue(header.reply(.rst))
    }

    private func queueCreditUpdate(_ connection: VsockConnection) {
        guard !connection.creditUpdateQueued else { return }
        connection.creditUpdateQueued = true
        queue(VsockHeader(srcCID: VsockHeader.hostCID, dstCID: cid, srcPort: connection.key.local,
                          dstPort: connection.key.peer, op: .creditUpdate))
    }

    /// Closes the host socket and tells the guest with RST.
    private func reset(_ connection: VsockConnection) {
        close(connection)
        count("resets_sent")
        queue(VsockHeader(srcCID: VsockHeader.hostCID, dstCID: cid, srcPort: connection.key.local,
                          dstPort: connection.key.peer, op: .rst))
    }

    /// Closes the host socket and forgets the stream (no packet to the guest).
    private func close(_ connection: VsockConnection) {
        poller.remove(connection.stream)
        connection.stream.close()
        connections[connection.key] = nil
        owners[connection.token] = nil
    }

    /// Device reset: every stream and client is closed, queued packets are dropped.
    func reset() {
        for connection in connections.values { close(connection) }
        for (token, owner) in owners {
            if case let .client(stream, _) = owner { dropClient(token, stream) }
        }
        control.removeAll()
        lastServed = nil
    }
}
