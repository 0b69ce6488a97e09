/// virtio-mem wire formats (virtio 1.2, 5.15; Linux include/uapi/linux/virtio_mem.h). All
/// fields are little-endian.
public enum MemSpec {
    /// `struct virtio_mem_req`: le16 type, 6 bytes padding, le64 addr, le16 nb_blocks, padding.
    public static let requestSize = 24
    /// `struct virtio_mem_resp`: le16 type, 6 bytes padding, le16 state.
    public static let responseSize = 10
    /// `struct virtio_mem_config`, 56 bytes.
    public static let configSize = 56

    /// Feature bits of the device type (none offered: no NUMA node from ACPI, unplugged memory
    /// stays readable, no suspend support).
    public static let featureACPIProximity: UInt64 = 1 << 0
    public static let featureUnpluggedInaccessible: UInt64 = 1 << 1
}

public enum MemRequestType: UInt16, Sendable {
    case plug = 0
    case unplug = 1
    case unplugAll = 2
    case state = 3
}

public enum MemResponseType: UInt16, Sendable {
    case ack = 0
    case nack = 1
    case busy = 2
    case error = 3
}

public enum MemBlockState: UInt16, Sendable {
    case plugged = 0
    case unplugged = 1
    case mixed = 2
}

/// A decoded request: type (raw, so unknown types can be answered), first block address and
/// number of blocks (ignored for UNPLUG_ALL).
public struct MemRequest: Equatable, Sendable {
    public var type: UInt16
    public var address: UInt64
    public var blockCount: UInt16

    public init(type: UInt16, address: UInt64, blockCount: UInt16) {
        self.type = type
        self.address = address
        self.blockCount = blockCount
    }

    /// Decodes the first `MemSpec.requestSize` bytes; nil when there are fewer.
    public init?(bytes: [UInt8]) {
        guard bytes.count >= MemSpec.requestSize else { return nil }
        type = UInt16(littleEndianBytes: bytes, at: 0)
        address = UInt64(littleEndianBytes: bytes, at: 8)
        blockCount = UInt16(littleEndianBytes: bytes, at: 16)
    }

    public var bytes: [UInt8] {
        var out = [UInt8](repeating: 0, count: MemSpec.requestSize)
        out.storeLittleEndian(type, at: 0)
        out.storeLittleEndian(address, at: 8)
        out.storeLittleEndian(blockCount, at: 16)
        return out
    }
}

/// A response: its type and, for STATE, the state of the blocks.
public struct MemResponse: Equatable, Sendable {
    public var type: MemResponseType
    public var state: MemBlockState?

    public init(_ type: MemResponseType, state: MemBlockState? = nil) {
        self.type = type
        self.state = state
    }

    public var bytes: [UInt8] {
        var out = [UInt8](repeating: 0, count: MemSpec.responseSize)
        out.storeLittleEndian(type.rawValue, at: 0)
        out.storeLittleEndian(state?.rawValue ?? 0, at: 8)
        return out
    }
}

/// `struct virtio_mem_config`.
public struct MemConfig: Equatable, Sendable {
    public var blockSize: UInt64
    public var nodeID: UInt16 = 0
    public var address: UInt64
    public var regionSize: UInt64
    public var usableRegionSize: UInt64
    public var pluggedSize: UInt64
    public var requestedSize: UInt64

    public var bytes: [UInt8] {
        var out = [UInt8](repeating: 0, count: MemSpec.configSize)
        out.storeLittleEndian(blockSize, at: 0)
        out.storeLittleEndian(nodeID, at: 8)
        out.storeLittleEndian(address, at: 16)
        out.storeLittleEndian(regionSize, at: 24)
        out.storeLittleEndian(usableRegionSize, at: 32)
        out.storeLittleEndian(pluggedSize, at: 40)
        out.storeLittleEndian(requestedSize, at: 48)
        return out
    }
}

fileprivate extension FixedWidthInteger {
    /// Reads a little-endian value at `offset`; the caller checked the length.
    init(littleEndianBytes bytes: [UInt8], at offset: Int) {
        var value = Self.zero
        for index in 0..<MemoryLayout<Self>.size {
            value |= Self(truncatingIfNeeded: bytes[offset + index]) << (8 * index)
        }
        self = value
    }
}

fileprivate extension Array where Element == UInt8 {
    mutating func storeLittleEndian<T: FixedWidthInteger>(_ value: T, at offset: Int) {
        for index in 0..<MemoryLayout<T>.size {
            self[offset + index] = UInt8(truncatingIfNeeded: value >> (8 * index))
        }
    }
}
