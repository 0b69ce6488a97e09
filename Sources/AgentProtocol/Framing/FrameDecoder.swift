/// Incremental ttRPC frame decoder: append bytes as they arrive, take frames out with `next()`.
///
/// Memory is bounded by what was received, never by what a header declares: the payload is
/// sliced out of the received bytes once all of it is there, and a header declaring more than
/// `maxPayload` bytes is refused before anything is kept for it (its payload is then dropped as
/// it arrives). A reader that appends at most `chunk` bytes at a time and drains `next()` until
/// it returns nil therefore holds at most `headerSize + maxPayload + chunk` bytes.
public struct FrameDecoder: Sendable {
    public let maxPayload: Int
    private var buffer: [UInt8] = []
    /// Index of the first byte not yet consumed.
    private var start = 0
    /// Payload bytes of a refused (oversize) frame still to be dropped as they arrive, and
    /// that frame's header.
    private var skipping = 0
    private var skipped = FrameHeader(length: 0, streamID: 0, type: .data)

    /// Buffers above this size are released, not kept, once empty.
    private static let keptCapacity = 64 << 10

    public init(maxPayload: Int = TTRPC.maxPayload) {
        precondition(maxPayload >= 0 && maxPayload <= TTRPC.maxPayload, "maxPayload must be within ttRPC's 4 MiB")
        self.maxPayload = maxPayload
    }

    /// Bytes received and not yet returned as frames.
    public var bufferedBytes: Int { buffer.count - start }

    /// True while the payload of a refused frame is still being dropped.
    public var isSkipping: Bool { skipping > 0 }

    public mutating func append(_ bytes: UnsafeRawBufferPointer) {
        var bytes = bytes[...]
        if skipping > 0 {
            let dropped = min(skipping, bytes.count)
            skipping -= dropped
            bytes = bytes.dropFirst(dropped)
        }
        guard !bytes.isEmpty else { return }
        if start > 0 {
            buffer.removeFirst(start)
            start = 0
        }
        buffer.append(contentsOf: bytes)
    }

    public mutating func append(_ bytes: [UInt8]) {
        // SAFETY: the pointer is used only inside the call, while `bytes` is alive.
        bytes.withUnsafeBytes { append($0) }
    }

    /// The next complete frame, or nil when more bytes are needed. Throws `.oversize` for a
    /// header over the limit; the decoder stays usable and resumes after that frame's payload.
    public mutating func next() throws(FrameError) -> Frame? {
        guard skipping == 0, bufferedBytes >= TTRPC.headerSize else { return nil }
        let header = FrameHeader(buffer, at: start)
        let length = Int(header.length)
        guard length <= maxPayload else {
            start += TTRPC.headerSize
            let buffered = min(bufferedBytes, length)
            start += buffered
            skipping = length - buffered
            skipped = header
            releaseIfEmpty()
            throw .oversize(streamID: header.streamID, type: header.type, length: length, limit: maxPayload)
        }
        guard bufferedBytes >= TTRPC.headerSize + length else { return nil }
        let payloadStart = start + TTRPC.headerSize
        let payload = Array(buffer[payloadStart ..< payloadStart + length])
        start = payloadStart + length
        releaseIfEmpty()
        return Frame(streamID: header.streamID, type: header.type, flags: header.flags, payload: payload)
    }

    /// Call at end of stream: throws `.truncated` when a frame was only partly received.
    public func finish() throws(FrameError) {
        if skipping > 0 {
            let need = TTRPC.headerSize + Int(skipped.length)
            throw .truncated(streamID: skipped.streamID, have: need - skipping, need: need)
        }
        let have = bufferedBytes
        guard have > 0 else { return }
        guard have >= TTRPC.headerSize else {
            throw .truncated(streamID: nil, have: have, need: TTRPC.headerSize)
        }
        let header = FrameHeader(buffer, at: start)
        throw .truncated(streamID: header.streamID, have: have, need: TTRPC.headerSize + Int(header.length))
    }

    private mutating func releaseIfEmpty() {
        guard start == buffer.count else { return }
        buffer.removeAll(keepingCapacity: buffer.capacity <= Self.keptCapacity)
        start = 0
    }
}

extension FrameDecoder {
    /// How a stream that `readFrames` read has ended.
    public enum End: Sendable {
        /// End of stream between frames.
        case closed
        /// End of stream inside a frame.
        case truncated(FrameError)
        /// `read` threw this.
        case failed(any Error)
    }

    /// The read loop both ends of a connection run: `read` fills its buffer (of `chunk` bytes)
    /// and returns the count, 0 at end of stream; each decoded frame, or frame error (an
    /// oversize frame, whose payload is then skipped), goes to `handle` in stream order.
    /// Returns when the stream ends or `read` throws. The I/O stays with the caller.
    public static func readFrames(
        chunk: Int, maxPayload: Int = TTRPC.maxPayload,
        read: (inout [UInt8]) throws -> Int, handle: (Result<Frame, FrameError>) -> Void
    ) -> End {
        var decoder = FrameDecoder(maxPayload: maxPayload)
        var buffer = [UInt8](repeating: 0, count: max(1, chunk))
        while true {
            let count: Int
            do {
                count = try read(&buffer)
            } catch {
                return .failed(error)
            }
            guard count > 0 else { break }
            // SAFETY: the first `count` bytes are what read filled, clamped to the buffer.
            buffer.withUnsafeBytes { decoder.append(UnsafeRawBufferPointer(rebasing: $0[0..<min(count, $0.count)])) }
            while true {
                do {
                    guard let frame = try decoder.next() else { break }
                    handle(.success(frame))
                } catch {
                    handle(.failure(error))
                }
            }
        }
        do {
            try decoder.finish()
            return .closed
        } catch {
            return .truncated(error)
        }
    }
}
