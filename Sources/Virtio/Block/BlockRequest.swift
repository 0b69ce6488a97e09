import Memory

/// A run of guest memory inside one descriptor's buffer.
struct GuestSegment: Equatable {
    let address: GuestAddress
    let length: Int
}

/// One virtio-blk request taken apart (virtio 1.x, 5.2.6): the 16-byte header from the start of
/// the device-readable bytes, the rest of them as the request's input (OUT data, DISCARD
/// segments), the device-writable bytes before the last one as its output (IN data, the GET_ID
/// string), and the status byte as the last device-writable byte. How the driver splits these
/// over descriptors does not matter.
struct BlockRequest {
    let type: UInt32
    let sector: UInt64
    let input: [GuestSegment]
    let output: [GuestSegment]
    let status: GuestAddress

    var inputLength: Int { input.reduce(0) { $0 + $1.length } }

    /// What a chain turned out to be.
    enum Parsed {
        case request(BlockRequest)
        /// The status byte is reachable but the header is not whole: answer IOERR.
        case malformed(status: GuestAddress, reason: String)
    }

    /// Takes a validated chain apart. A chain with no device-writable byte has nowhere to put a
    /// status: that is a protocol violation (throws); anything else wrong is answered with IOERR.
    static func parse(_ chain: DescriptorChain, _ memory: GuestMemory) throws(VirtioDeviceError) -> Parsed {
        // The chain's two halves, split once (a 1 MiB request has 258 descriptors).
        let readableDescriptors = chain.readable, writableDescriptors = chain.writable
        guard let last = writableDescriptors.last(where: { $0.length > 0 }) else {
            throw VirtioDeviceError("virtio-blk request \(chain.head) has no device-writable status byte")
        }
        let status = last.address + UInt64(last.length - 1)
        let writableLength = writableDescriptors.reduce(0) { $0 + Int($1.length) }
        let output = segments(writableDescriptors, from: 0, count: writableLength - 1)
        let readable = readableDescriptors.reduce(0) { $0 + Int($1.length) }
        guard readable >= BlockSpec.headerSize else {
            return .malformed(status: status, reason: "header of \(readable) bytes, expected \(BlockSpec.headerSize)")
        }
        let header = try chain.readBytes(memory, limit: BlockSpec.headerSize)
        let input = segments(readableDescriptors, from: BlockSpec.headerSize, count: readable - BlockSpec.headerSize)
        return .request(BlockRequest(type: littleEndian(header, 0, as: UInt32.self),
                                     sector: littleEndian(header, 8, as: UInt64.self),
                                     input: input, output: output, status: status))
    }

    /// The runs covering `count` bytes of `descriptors`' buffers, skipping the first `start`.
    static func segments(_ descriptors: [Descriptor], from start: Int, count: Int) -> [GuestSegment] {
        var result: [GuestSegment] = []
        var skip = start
        var remaining = count
        for descriptor in descriptors where remaining > 0 {
            let length = Int(descriptor.length)
            if skip >= length { skip -= length; continue }
            let take = min(length - skip, remaining)
            result.append(GuestSegment(address: descriptor.address + UInt64(skip), length: take))
            remaining -= take
            skip = 0
        }
        return result
    }
}

/// Decodes a little-endian integer from `bytes` at `offset` (the caller checked the length).
func littleEndian<T: FixedWidthInteger>(_ bytes: [UInt8], _ offset: Int, as type: T.Type) -> T {
    var value: T = 0
    for index in 0..<(T.bitWidth / 8) {
        value |= T(bytes[offset + index]) << (8 * index)
    }
    return value
}
