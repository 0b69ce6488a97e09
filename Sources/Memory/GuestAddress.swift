/// A guest-physical address. A distinct type so that host pointers, offsets and guest
/// addresses cannot be mixed up.
public struct GuestAddress: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var raw: UInt64

    @inlinable public init(_ raw: UInt64) { self.raw = raw }

    @inlinable public static func < (a: GuestAddress, b: GuestAddress) -> Bool { a.raw < b.raw }

    /// `self + offset`, or nil when it overflows 64 bits.
    @inlinable public func adding(_ offset: UInt64) -> GuestAddress? {
        let (sum, overflow) = raw.addingReportingOverflow(offset)
        return overflow ? nil : GuestAddress(sum)
    }

    /// `self + offset`; traps on overflow, so use it only for addresses the VMM chose.
    @inlinable public static func + (a: GuestAddress, offset: UInt64) -> GuestAddress {
        GuestAddress(a.raw + offset)
    }

    public var description: String { "0x" + String(raw, radix: 16) }
}

/// Sizes in bytes, spelled the way the rest of the code reads them.
public extension UInt64 {
    static let kib: UInt64 = 1 << 10
    static let mib: UInt64 = 1 << 20
    static let gib: UInt64 = 1 << 30
}
