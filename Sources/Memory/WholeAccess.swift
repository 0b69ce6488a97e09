import CMemory

/// Loads and stores of 2, 4 or 8 bytes at an address aligned to their size, in one access each
/// (single-copy atomic). The guest reads and writes virtqueue indexes and event fields while the
/// device does (virtio 1.x, 2.7); a generic copy becomes memcpy, which may move the two bytes of
/// an index one at a time, and then a driver moving avail->idx from 0x12FF to 0x1300 can be
/// read as 0x13FF (this made virtio-net report 260 buffers published in a queue of 256).
enum WholeAccess {
    /// The value at `source` in one access; nil when T's size is not 2, 4 or 8 or `source` is
    /// not aligned to it (the caller copies bytes then: one byte is one access anyway).
    @inline(__always)
    static func load<T: BitwiseCopyable>(_: T.Type, from source: UnsafeRawPointer) -> T? {
        let size = MemoryLayout<T>.size
        guard size == 2 || size == 4 || size == 8, UInt(bitPattern: source) % UInt(size) == 0 else { return nil }
        switch size {
        case 2: return unsafeBitCast(kvmrun_load_u16(source), to: T.self)
        case 4: return unsafeBitCast(kvmrun_load_u32(source), to: T.self)
        default: return unsafeBitCast(kvmrun_load_u64(source), to: T.self)
        }
    }

    /// Writes `value` at `dest` in one access; false (nothing written) when T's size is not
    /// 2, 4 or 8 or `dest` is not aligned to it.
    @inline(__always)
    static func store<T: BitwiseCopyable>(_ value: T, to dest: UnsafeMutableRawPointer) -> Bool {
        let size = MemoryLayout<T>.size
        guard size == 2 || size == 4 || size == 8, UInt(bitPattern: dest) % UInt(size) == 0 else { return false }
        switch size {
        case 2: kvmrun_store_u16(dest, unsafeBitCast(value, to: UInt16.self))
        case 4: kvmrun_store_u32(dest, unsafeBitCast(value, to: UInt32.self))
        default: kvmrun_store_u64(dest, unsafeBitCast(value, to: UInt64.self))
        }
        return true
    }
}
