import Memory

/// Little-endian access to byte buffers: kernel files (untrusted, so reads are optional) and
/// boot structures the VMM builds (fixed sizes, so writes trap on a programming error).
extension Array where Element == UInt8 {
    /// The little-endian integer at `offset`, or nil when it does not lie inside the array.
    func readLE<T: FixedWidthInteger>(_: T.Type, at offset: Int) -> T? {
        let width = MemoryLayout<T>.size
        guard offset >= 0, offset <= count - width else { return nil }
        var value: T = 0
        for index in 0..<width { value |= T(truncatingIfNeeded: self[offset + index]) << (8 * index) }
        return value
    }

    /// Stores `value` little-endian at `offset`. The caller sized the buffer for it.
    mutating func writeLE<T: FixedWidthInteger>(_ value: T, at offset: Int) {
        for index in 0..<MemoryLayout<T>.size {
            self[offset + index] = UInt8(truncatingIfNeeded: value >> (8 * index))
        }
    }

    /// Copies `bytes` to `offset`. The caller sized the buffer for it.
    mutating func writeBytes<C: Collection>(_ bytes: C, at offset: Int) where C.Element == UInt8 {
        replaceSubrange(offset..<(offset + bytes.count), with: bytes)
    }
}

/// Sum of all bytes modulo 256, and the byte that makes the sum zero.
func checksumByte<C: Collection>(_ bytes: C) -> UInt8 where C.Element == UInt8 {
    let sum = bytes.reduce(UInt8(0)) { $0 &+ $1 }
    return 0 &- sum
}

extension UInt64 {
    /// Rounds up to a multiple of `alignment` (a power of two); nil on overflow.
    func alignedUp(to alignment: UInt64) -> UInt64? {
        let (sum, overflow) = addingReportingOverflow(alignment - 1)
        return overflow ? nil : sum & ~(alignment - 1)
    }

    func alignedDown(to alignment: UInt64) -> UInt64 { self & ~(alignment - 1) }
}

/// Guest-memory writes that turn `MemoryError` into a `BootError` naming the boot step.
extension GuestMemory {
    func bootWrite(_ bytes: [UInt8], at address: GuestAddress, step: String) throws(BootError) {
        do throws(MemoryError) { try write(bytes, at: address) } catch { throw .guestMemory(step: step, error) }
    }

    func bootWrite(_ bytes: ArraySlice<UInt8>, at address: GuestAddress, step: String) throws(BootError) {
        let result: Result<Void, MemoryError> = bytes.withUnsafeBytes { raw in
            // SAFETY: `raw` is the slice's own storage, valid for this closure only; write()
            // copies it out and bounds-checks the guest range.
            Result { () throws(MemoryError) in try write(raw, at: address) }
        }
        do throws(MemoryError) { try result.get() } catch { throw .guestMemory(step: step, error) }
    }

    func bootZero(at address: GuestAddress, length: UInt64, step: String) throws(BootError) {
        do throws(MemoryError) { try zero(at: address, length: length) } catch { throw .guestMemory(step: step, error) }
    }
}
