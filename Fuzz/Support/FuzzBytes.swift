/// A cursor over one fuzz input. Reads past the end give zeros (and empty arrays), so a target
/// never has to check lengths: a short input is just an input whose tail is zero.
public struct FuzzBytes {
    private let bytes: UnsafeRawBufferPointer
    public private(set) var position = 0

    public init(_ bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    /// The libFuzzer entry's arguments as a buffer (`data` may be null when `size` is 0).
    public init(_ data: UnsafePointer<UInt8>?, _ size: Int) {
        self.bytes = UnsafeRawBufferPointer(start: data, count: data == nil ? 0 : size)
    }

    public var remaining: Int { bytes.count - position }
    public var isAtEnd: Bool { remaining <= 0 }

    public mutating func u8() -> UInt8 { integer() }
    public mutating func u16() -> UInt16 { integer() }
    public mutating func u32() -> UInt32 { integer() }
    public mutating func u64() -> UInt64 { integer() }
    public mutating func bool() -> Bool { u8() & 1 != 0 }

    /// The next little-endian integer (missing bytes read as zero).
    public mutating func integer<T: FixedWidthInteger>(_: T.Type = T.self) -> T {
        var value: T = 0
        for index in 0..<(T.bitWidth / 8) where position < bytes.count {
            value |= T(truncatingIfNeeded: bytes[position]) << (8 * index)
            position += 1
        }
        return value
    }

    /// The next `count` bytes, or fewer at the end of the input.
    public mutating func take(_ count: Int) -> [UInt8] {
        let count = max(0, min(count, remaining))
        defer { position += count }
        return Array(bytes[position..<(position + count)])
    }

    /// Everything not read yet (the cursor moves to the end).
    public mutating func rest() -> UnsafeRawBufferPointer {
        let start = min(position, bytes.count)
        position = bytes.count
        return UnsafeRawBufferPointer(rebasing: bytes[start...])
    }
}
