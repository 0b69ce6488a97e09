/// The virtio-vsock packet header (virtio 1.x, 5.10.6): 44 bytes, little endian, followed by
/// `length` payload bytes for RW packets.
public struct VsockHeader: Equatable, Sendable {
    public static let size = 44
    /// The host's CID (VMADDR_CID_HOST).
    public static let hostCID: UInt64 = 2
    /// Largest payload a packet may carry (Linux's VIRTIO_VSOCK_MAX_PKT_BUF_SIZE).
    public static let maxPayload = 64 * 1024

    public enum Kind {
        public static let stream: UInt16 = 1
    }

    public enum Op: UInt16, Sendable {
        case request = 1, response, rst, shutdown, rw, creditUpdate, creditRequest
    }

    /// SHUTDOWN flags: the sender will receive no more (`receive`) / send no more (`send`).
    public enum Shutdown {
        public static let receive: UInt32 = 1
        public static let send: UInt32 = 2
        public static let both: UInt32 = 3
    }

    public var srcCID: UInt64
    public var dstCID: UInt64
    public var srcPort: UInt32
    public var dstPort: UInt32
    public var length: UInt32
    public var type: UInt16
    public var op: UInt16
    public var flags: UInt32
    public var bufAlloc: UInt32
    public var fwdCnt: UInt32

    public init(srcCID: UInt64, dstCID: UInt64, srcPort: UInt32, dstPort: UInt32, length: UInt32 = 0,
                type: UInt16 = Kind.stream, op: Op, flags: UInt32 = 0, bufAlloc: UInt32 = 0, fwdCnt: UInt32 = 0) {
        self.init(srcCID: srcCID, dstCID: dstCID, srcPort: srcPort, dstPort: dstPort, length: length,
                  type: type, rawOp: op.rawValue, flags: flags, bufAlloc: bufAlloc, fwdCnt: fwdCnt)
    }

    public init(srcCID: UInt64, dstCID: UInt64, srcPort: UInt32, dstPort: UInt32, length: UInt32,
                type: UInt16, rawOp: UInt16, flags: UInt32, bufAlloc: UInt32, fwdCnt: UInt32) {
        self.srcCID = srcCID
        self.dstCID = dstCID
        self.srcPort = srcPort
        self.dstPort = dstPort
        self.length = length
        self.type = type
        self.op = rawOp
        self.flags = flags
        self.bufAlloc = bufAlloc
        self.fwdCnt = fwdCnt
    }

    /// The operation, or nil for a value the spec does not define.
    public var knownOp: Op? { Op(rawValue: op) }

    /// Decodes the first 44 bytes of `bytes`; nil when there are fewer.
    public init?(bytes: [UInt8]) {
        guard bytes.count >= VsockHeader.size else { return nil }
        func field<T: FixedWidthInteger>(_ offset: Int, _: T.Type) -> T {
            var value: T = 0
            for index in 0..<MemoryLayout<T>.size {
                value |= T(bytes[offset + index]) << (8 * index)
            }
            return value
        }
        self.init(srcCID: field(0, UInt64.self), dstCID: field(8, UInt64.self),
                  srcPort: field(16, UInt32.self), dstPort: field(20, UInt32.self),
                  length: field(24, UInt32.self), type: field(28, UInt16.self), rawOp: field(30, UInt16.self),
                  flags: field(32, UInt32.self), bufAlloc: field(36, UInt32.self), fwdCnt: field(40, UInt32.self))
    }

    /// The 44 header bytes.
    public var bytes: [UInt8] {
        var result: [UInt8] = []
        result.reserveCapacity(VsockHeader.size)
        func append<T: FixedWidthInteger>(_ value: T) {
            for index in 0..<MemoryLayout<T>.size { result.append(UInt8(truncatingIfNeeded: value >> (8 * index))) }
        }
        append(srcCID); append(dstCID); append(srcPort); append(dstPort); append(length)
        append(type); append(op); append(flags); append(bufAlloc); append(fwdCnt)
        return result
    }

    /// A reply to this packet (source and destination swapped) with operation `op`.
    public func reply(_ op: Op, flags: UInt32 = 0) -> VsockHeader {
        VsockHeader(srcCID: dstCID, dstCID: srcCID, srcPort: dstPort, dstPort: srcPort, op: op, flags: flags)
    }
}
