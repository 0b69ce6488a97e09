// ttRPC framing (containerd/ttrpc's PROTOCOL.md): every message is a 10-byte big-endian header
// followed by its payload.
//
//     0  u32  payload length, at most 4 MiB
//     4  u32  stream id: odd for client-initiated streams, strictly increasing per connection
//     8  u8   type: 1 request, 2 response, 3 data
//     9  u8   flags: 1 remote closed, 2 remote open, 4 no data
//
// This file and FrameDecoder.swift are a pure codec: bytes in, frames or a typed error out.
// No Foundation, no I/O.

/// Limits of the ttRPC framing.
public enum TTRPC {
    /// Bytes of a frame header.
    public static let headerSize = 10
    /// The largest payload a frame may declare (containerd/ttrpc's `messageLengthMax`).
    public static let maxPayload = 4 << 20
}

/// A frame's message type. Unknown values are kept (the decoder does not judge them; the
/// server answers them with an error).
public struct FrameType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let request = FrameType(rawValue: 1)
    public static let response = FrameType(rawValue: 2)
    public static let data = FrameType(rawValue: 3)

    public var description: String {
        switch rawValue {
        case 1: return "request"
        case 2: return "response"
        case 3: return "data"
        default: return "type \(rawValue)"
        }
    }
}

/// A frame's flags (their meaning depends on the type; see PROTOCOL.md).
public struct FrameFlags: OptionSet, Hashable, Sendable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let remoteClosed = FrameFlags(rawValue: 1)
    public static let remoteOpen = FrameFlags(rawValue: 2)
    public static let noData = FrameFlags(rawValue: 4)
}

/// The 10-byte header.
public struct FrameHeader: Equatable, Sendable {
    public var length: UInt32
    public var streamID: UInt32
    public var type: FrameType
    public var flags: FrameFlags

    public init(length: UInt32, streamID: UInt32, type: FrameType, flags: FrameFlags = []) {
        self.length = length
        self.streamID = streamID
        self.type = type
        self.flags = flags
    }

    /// Parses the header at `bytes[offset ..< offset + 10]`; the caller has checked the count.
    init(_ bytes: [UInt8], at offset: Int) {
        func u32(_ at: Int) -> UInt32 {
            UInt32(bytes[at]) << 24 | UInt32(bytes[at + 1]) << 16 | UInt32(bytes[at + 2]) << 8 | UInt32(bytes[at + 3])
        }
        length = u32(offset)
        streamID = u32(offset + 4)
        type = FrameType(rawValue: bytes[offset + 8])
        flags = FrameFlags(rawValue: bytes[offset + 9])
    }

    /// Parses the first 10 bytes of `bytes`; nil when there are fewer.
    public init?(parsing bytes: [UInt8]) {
        guard bytes.count >= TTRPC.headerSize else { return nil }
        self.init(bytes, at: 0)
    }

    /// Appends the 10 header bytes to `out`.
    func append(to out: inout [UInt8]) {
        for value in [length, streamID] {
            out.append(UInt8(truncatingIfNeeded: value >> 24))
            out.append(UInt8(truncatingIfNeeded: value >> 16))
            out.append(UInt8(truncatingIfNeeded: value >> 8))
            out.append(UInt8(truncatingIfNeeded: value))
        }
        out.append(type.rawValue)
        out.append(flags.rawValue)
    }

    /// Rewrites the stream id of the encoded frame in `frame` (at least a header long).
    public static func setStreamID(_ id: UInt32, in frame: inout [UInt8]) {
        precondition(frame.count >= TTRPC.headerSize, "not an encoded frame")
        for index in 0..<4 { frame[4 + index] = UInt8(truncatingIfNeeded: id >> (24 - 8 * UInt32(index))) }
    }

    public var encoded: [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(TTRPC.headerSize)
        append(to: &out)
        return out
    }
}

/// One decoded frame.
public struct Frame: Equatable, Sendable {
    public var streamID: UInt32
    public var type: FrameType
    public var flags: FrameFlags
    public var payload: [UInt8]

    public init(streamID: UInt32, type: FrameType, flags: FrameFlags = [], payload: [UInt8]) {
        self.streamID = streamID
        self.type = type
        self.flags = flags
        self.payload = payload
    }

    /// Header and payload, ready to write. Throws `.oversize` for a payload over the limit
    /// (nothing is written for it: the peer would refuse it).
    public func encoded(limit: Int = TTRPC.maxPayload) throws(FrameError) -> [UInt8] {
        guard payload.count <= limit else {
            throw .oversize(streamID: streamID, type: type, length: payload.count, limit: limit)
        }
        var out = [UInt8]()
        out.reserveCapacity(TTRPC.headerSize + payload.count)
        FrameHeader(length: UInt32(payload.count), streamID: streamID, type: type, flags: flags).append(to: &out)
        out.append(contentsOf: payload)
        return out
    }
}

/// What can go wrong with frames. Each case names the stream and the sizes involved.
public enum FrameError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A frame declaring (or, when encoding, carrying) more than `limit` payload bytes. When
    /// decoding, the payload is skipped as it arrives, never stored, and decoding goes on after
    /// it (as containerd/ttrpc does), so the stream can be answered with an error.
    case oversize(streamID: UInt32, type: FrameType, length: Int, limit: Int)
    /// The byte stream ended inside a frame: `have` of the `need` bytes of the frame (header
    /// included) had arrived; `streamID` is nil when not even the header was complete.
    case truncated(streamID: UInt32?, have: Int, need: Int)

    public var description: String {
        switch self {
        case let .oversize(streamID, type, length, limit):
            return "ttRPC \(type) frame on stream \(streamID): payload of \(length) bytes exceeds the \(limit)-byte limit"
        case let .truncated(streamID?, have, need):
            return "ttRPC stream ended inside the frame of stream \(streamID): \(have) of its \(need) bytes arrived"
        case let .truncated(nil, have, need):
            return "ttRPC stream ended inside a frame header: \(have) of its \(need) bytes arrived"
        }
    }
}
