#if canImport(Glibc)
import Glibc
#endif
import Sys

/// Returning guest memory to the host (virtio-mem unplug) and measuring what is resident.
extension GuestMemory {
    public static let pageSize: UInt64 = 4096

    /// Gives the host pages behind a page-aligned range back with madvise(MADV_DONTNEED): the
    /// process's RSS drops and the range reads as zero afterwards (anonymous private mapping).
    public func discard(at address: GuestAddress, length: UInt64) throws(MemoryError) {
        let start = try hostRange(at: address, length: length)
        // SAFETY: hostRange checked that the range lies inside one mapping owned by self.
        if madvise(UnsafeMutableRawPointer(bitPattern: start), Int(length), MADV_DONTNEED) != 0 {
            throw .adviceFailed(address, length: length, SystemError(call: "madvise(MADV_DONTNEED)", errno: Glibc.errno))
        }
    }

    /// Bytes of a page-aligned range that are resident in host memory (mincore(2)).
    public func residentBytes(at address: GuestAddress, length: UInt64) throws(MemoryError) -> UInt64 {
        let start = try hostRange(at: address, length: length)
        let pages = Int(length / GuestMemory.pageSize)
        var vector = [UInt8](repeating: 0, count: pages)
        // SAFETY: the range lies inside one mapping owned by self; vector holds one byte per page.
        let result = vector.withUnsafeMutableBufferPointer { buffer in
            mincore(UnsafeMutableRawPointer(bitPattern: start), Int(length), buffer.baseAddress)
        }
        if result != 0 {
            throw .adviceFailed(address, length: length, SystemError(call: "mincore", errno: Glibc.errno))
        }
        return UInt64(vector.reduce(0) { $0 + Int($1 & 1) }) * GuestMemory.pageSize
    }

    /// The host address of a non-empty, page-aligned range inside one region.
    private func hostRange(at address: GuestAddress, length: UInt64) throws(MemoryError) -> UInt {
        guard length > 0, let region = region(containing: address, length: length) else {
            throw .outOfRange(address, length: length)
        }
        guard address.raw % GuestMemory.pageSize == 0, length % GuestMemory.pageSize == 0 else {
            throw .badLayout("range \(address)..+\(length) is not 4 KiB-aligned")
        }
        return region.hostAddress + UInt(address.raw - region.guestBase.raw)
    }
}
