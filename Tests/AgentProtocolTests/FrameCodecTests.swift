import AgentProtocol
import Testing

/// The ttRPC frame codec against well-formed, truncated, oversize, zero-length, garbage and
/// interleaved input: frames or typed errors, no crash, memory bounded by what arrived.
@Suite("ttRPC frame codec")
struct FrameCodecTests {
    /// Drains every frame the decoder has; errors are collected in order beside them.
    static func drain(_ decoder: inout FrameDecoder) -> (frames: [Frame], errors: [FrameError]) {
        var frames: [Frame] = []
        var errors: [FrameError] = []
        while true {
            do {
                guard let frame = try decoder.next() else { break }
                frames.append(frame)
            } catch {
                errors.append(error)
            }
        }
        return (frames, errors)
    }

    @Test("header layout: big-endian length and stream id, then type and flags")
    func headerLayout() throws {
        let frame = Frame(streamID: 0x0102_0305, type: .request, flags: [.remoteClosed, .noData], payload: [0xAA, 0xBB, 0xCC])
        #expect(try frame.encoded() == [0, 0, 0, 3, 0x01, 0x02, 0x03, 0x05, 1, 5, 0xAA, 0xBB, 0xCC])
        let header = try #require(FrameHeader(parsing: [0x00, 0x40, 0x00, 0x00, 0, 0, 0, 7, 3, 2]))
        #expect(header == FrameHeader(length: 4 << 20, streamID: 7, type: .data, flags: .remoteOpen))
        #expect(header.encoded == [0x00, 0x40, 0x00, 0x00, 0, 0, 0, 7, 3, 2])
        #expect(FrameHeader(parsing: [0, 0, 0]) == nil)
        var bytes = try frame.encoded()
        FrameHeader.setStreamID(0xA1B2_C3D5, in: &bytes)
        #expect(bytes[4..<8] == [0xA1, 0xB2, 0xC3, 0xD5] && bytes.count == 13 && bytes[0..<4] == [0, 0, 0, 3])
    }

    @Test("a frame fed one byte at a time comes out once, whole")
    func byteByByte() throws {
        let frame = Frame(streamID: 9, type: .response, payload: Array(0..<200))
        var decoder = FrameDecoder()
        var out: [Frame] = []
        for byte in try frame.encoded() {
            decoder.append([byte])
            if let decoded = try decoder.next() { out.append(decoded) }
        }
        #expect(out == [frame])
        #expect(decoder.bufferedBytes == 0)
        try decoder.finish()
    }

    @Test("truncated header or payload: no frame, and finish() names what is missing")
    func truncated() throws {
        var header = FrameDecoder()
        header.append([0, 0, 0, 5, 0])
        #expect(try header.next() == nil)
        #expect(throws: FrameError.truncated(streamID: nil, have: 5, need: 10)) { try header.finish() }

        var payload = FrameDecoder()
        let bytes = try Frame(streamID: 3, type: .request, payload: [1, 2, 3, 4, 5]).encoded()
        payload.append(Array(bytes.dropLast(2)))
        #expect(try payload.next() == nil)
        #expect(throws: FrameError.truncated(streamID: 3, have: 13, need: 15)) { try payload.finish() }
        let error = FrameError.truncated(streamID: 3, have: 13, need: 15)
        #expect(error.description.contains("stream 3") && error.description.contains("13 of its 15"))
    }

    @Test("oversize: refused from the header alone, payload dropped unstored, decoding resumes")
    func oversize() throws {
        var decoder = FrameDecoder()
        let declared = TTRPC.maxPayload + 1
        decoder.append(FrameHeader(length: UInt32(declared), streamID: 5, type: .request).encoded)
        #expect(throws: FrameError.oversize(streamID: 5, type: .request, length: declared, limit: TTRPC.maxPayload)) {
            try decoder.next()
        }
        #expect(decoder.isSkipping)
        // The refused payload arrives in 64 KiB pieces and is never kept.
        let piece = [UInt8](repeating: 0x5A, count: 64 << 10)
        var left = declared
        while left > 0 {
            let count = min(left, piece.count)
            decoder.append(Array(piece[0..<count]))
            left -= count
            #expect(decoder.bufferedBytes == 0)
            #expect(try decoder.next() == nil)
        }
        #expect(!decoder.isSkipping)
        let next = Frame(streamID: 7, type: .request, payload: [42])
        decoder.append(try next.encoded())
        #expect(try decoder.next() == next)
    }

    @Test("a header declaring 4 GiB is refused at once and only a truncation remains at end of stream")
    func hugeDeclaration() throws {
        var decoder = FrameDecoder()
        decoder.append([0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 1, 1, 0, 1, 2, 3])
        #expect(throws: FrameError.oversize(streamID: 1, type: .request, length: Int(UInt32.max), limit: TTRPC.maxPayload)) {
            try decoder.next()
        }
        #expect(decoder.bufferedBytes == 0)
        #expect(throws: FrameError.truncated(streamID: 1, have: 13, need: 10 + Int(UInt32.max))) { try decoder.finish() }
    }

    @Test("exactly 4 MiB is accepted; one byte more cannot be encoded")
    func limitExactly() throws {
        let big = Frame(streamID: 1, type: .data, payload: [UInt8](repeating: 7, count: TTRPC.maxPayload))
        var decoder = FrameDecoder()
        decoder.append(try big.encoded())
        #expect(try decoder.next() == big)
        let tooBig = Frame(streamID: 3, type: .data, payload: [UInt8](repeating: 7, count: TTRPC.maxPayload + 1))
        #expect(throws: FrameError.oversize(streamID: 3, type: .data, length: TTRPC.maxPayload + 1, limit: TTRPC.maxPayload)) {
            try tooBig.encoded()
        }
    }

    @Test("zero-length frames are frames with an empty payload")
    func zeroLength() throws {
        var decoder = FrameDecoder()
        var bytes: [UInt8] = []
        for id: UInt32 in [1, 3, 5] { bytes += try Frame(streamID: id, type: .request, payload: []).encoded() }
        decoder.append(bytes)
        let (frames, errors) = Self.drain(&decoder)
        #expect(errors.isEmpty)
        #expect(frames.map(\.streamID) == [1, 3, 5])
        #expect(frames.allSatisfy { $0.payload.isEmpty })
    }

    @Test("interleaved frames of many streams, split at every boundary, come out in order")
    func interleaved() throws {
        var frames: [Frame] = []
        for round in 0..<6 {
            for stream: UInt32 in [1, 3, 5, 7] {
                let type: FrameType = round % 2 == 0 ? .request : .data
                frames.append(Frame(streamID: stream, type: type, payload: Array(repeating: UInt8(stream), count: Int(stream) * round)))
            }
        }
        let bytes = try frames.flatMap { try $0.encoded() }
        for chunk in [1, 2, 9, 10, 11, 64, bytes.count] {
            var decoder = FrameDecoder()
            var out: [Frame] = []
            var offset = 0
            while offset < bytes.count {
                let end = min(offset + chunk, bytes.count)
                decoder.append(Array(bytes[offset..<end]))
                offset = end
                let (decoded, errors) = Self.drain(&decoder)
                #expect(errors.isEmpty)
                out += decoded
            }
            #expect(out == frames, "chunk size \(chunk)")
            try decoder.finish()
        }
    }

    @Test("garbage: frames or typed errors, never more buffered than one frame and one chunk")
    func garbage() {
        var random = SplitMix(seed: 0x6B76_6D72_756E)
        for _ in 0..<200 {
            var decoder = FrameDecoder()
            let chunk = 1 + Int(random.next() % 4096)
            for _ in 0..<16 {
                // Mostly small lengths (so some frames complete), sometimes anything.
                var bytes = (0..<chunk).map { _ in UInt8(truncatingIfNeeded: random.next()) }
                if random.next() % 2 == 0, bytes.count >= 2 { bytes[0] = 0; bytes[1] = 0 }
                decoder.append(bytes)
                _ = Self.drain(&decoder)
                #expect(decoder.bufferedBytes <= TTRPC.headerSize + TTRPC.maxPayload + chunk)
            }
            _ = try? decoder.finish()
        }
    }

    @Test("error descriptions name the stream, the type and the sizes")
    func descriptions() {
        let oversize = FrameError.oversize(streamID: 11, type: .response, length: 5_000_000, limit: TTRPC.maxPayload)
        #expect(oversize.description == "ttRPC response frame on stream 11: payload of 5000000 bytes exceeds the 4194304-byte limit")
        #expect(FrameType(rawValue: 9).description == "type 9")
    }
}

/// A small deterministic generator, so a failing garbage case can be replayed.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
