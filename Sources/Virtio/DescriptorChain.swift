import Memory

/// One buffer of a descriptor chain, already checked to lie inside guest RAM.
public struct Descriptor: Equatable, Sendable {
    public let address: GuestAddress
    public let length: UInt32
    /// Device-writable (VIRTQ_DESC_F_WRITE): the device fills it; otherwise the device reads it.
    public let isWriteOnly: Bool

    public init(address: GuestAddress, length: UInt32, isWriteOnly: Bool) {
        self.address = address
        self.length = length
        self.isWriteOnly = isWriteOnly
    }
}

/// A validated descriptor chain: device-readable buffers first, then device-writable ones.
/// The guest may still change the bytes in these buffers at any time; devices copy what they
/// read before interpreting it.
public struct DescriptorChain: Equatable, Sendable {
    public let head: UInt16
    public let descriptors: [Descriptor]

    public init(head: UInt16, descriptors: [Descriptor]) {
        self.head = head
        self.descriptors = descriptors
    }

    public var readable: [Descriptor] { descriptors.filter { !$0.isWriteOnly } }
    public var writable: [Descriptor] { descriptors.filter { $0.isWriteOnly } }
    public var readableLength: Int { readable.reduce(0) { $0 + Int($1.length) } }
    public var writableLength: Int { writable.reduce(0) { $0 + Int($1.length) } }

    /// Copies up to `limit` bytes of the readable buffers, in order, starting `offset` bytes in.
    public func readBytes(_ memory: GuestMemory, offset: Int = 0, limit: Int = .max) throws(VirtioDeviceError) -> [UInt8] {
        var result: [UInt8] = []
        var skip = offset
        for descriptor in readable {
            if result.count >= limit { break }
            let length = Int(descriptor.length)
            if skip >= length { skip -= length; continue }
            let count = min(length - skip, limit - result.count)
            do {
                result += try memory.read(count: count, at: descriptor.address + UInt64(skip))
            } catch {
                throw VirtioDeviceError("reading descriptor buffer at \(descriptor.address): \(error)")
            }
            skip = 0
        }
        return result
    }

    /// Copies `bytes` into the writable buffers, in order, starting `offset` bytes in. Returns
    /// how many bytes fit.
    @discardableResult
    public func writeBytes(_ bytes: [UInt8], _ memory: GuestMemory, offset: Int = 0) throws(VirtioDeviceError) -> Int {
        var written = 0
        var skip = offset
        for descriptor in writable {
            if written >= bytes.count { break }
            let length = Int(descriptor.length)
            if skip >= length { skip -= length; continue }
            let count = min(length - skip, bytes.count - written)
            do {
                try memory.write(Array(bytes[written..<(written + count)]), at: descriptor.address + UInt64(skip))
            } catch {
                throw VirtioDeviceError("writing descriptor buffer at \(descriptor.address): \(error)")
            }
            written += count
            skip = 0
        }
        return written
    }
}
