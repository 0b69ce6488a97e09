#if canImport(Glibc)
import Glibc
#endif
import CKVM
import Memory
import Sys

/// The backing file of a virtio-blk drive: a raw image opened once (read-only drives with
/// O_RDONLY), its size taken at open. Every transfer is checked against that size by the caller;
/// this type only moves bytes between the file and host memory and reports errno.
final class BlockFile: @unchecked Sendable {
    let path: String
    let fd: FileDescriptor
    let readOnly: Bool
    /// Size in bytes when opened (a regular file's length or a block device's size).
    let size: UInt64
    /// Whether `fallocate(PUNCH_HOLE | KEEP_SIZE)` works on this file (probed at open).
    let canPunchHoles: Bool

    /// Opens `path`; errors name the step and the path.
    init(path: String, readOnly: Bool) throws(SystemError) {
        self.path = path
        self.readOnly = readOnly
        let flags = (readOnly ? O_RDONLY : O_RDWR) | O_CLOEXEC
        let file = FileDescriptor(try sys("open \(path) (\(readOnly ? "read-only" : "read-write"))") { open(path, flags) })
        let end = try sys("lseek to the end of \(path)") { lseek(file.raw, 0, SEEK_END) }
        fd = file
        size = UInt64(end)
        canPunchHoles = !readOnly && BlockFile.probePunchHole(file.raw, size: UInt64(end))
    }

    /// Whole 512-byte sectors the guest can address (a partial last sector is not exposed).
    var capacitySectors: UInt64 { size >> BlockSpec.sectorShift }

    /// Punches a hole just past the end of the file: changes no data (KEEP_SIZE, beyond EOF)
    /// but fails with EOPNOTSUPP where the file system cannot deallocate ranges.
    private static func probePunchHole(_ fd: Int32, size: UInt64) -> Bool {
        guard size < UInt64(Int64.max) - 4096 else { return false }
        return kvmrun_fallocate(fd, KVMRUN_FALLOC_PUNCH_HOLE, Int64(size), 4096) == 0
    }

    /// Reads the file from `offset` into `segments` of guest memory, in order, with one preadv(2)
    /// per request (more only after a short read). Reading past the end of the file (it shrank)
    /// is an EIO.
    func read(into memory: GuestMemory, segments: [GuestSegment], offset: UInt64) throws(SystemError) {
        try transfer(memory, segments, offset, call: "preadv \(path)") { fd, vectors, count, position in
            preadv(fd, vectors, count, position)
        }
    }

    /// Writes `segments` of guest memory to the file from `offset`, in order, with pwritev(2).
    func write(from memory: GuestMemory, segments: [GuestSegment], offset: UInt64) throws(SystemError) {
        try transfer(memory, segments, offset, call: "pwritev \(path)") { fd, vectors, count, position in
            pwritev(fd, vectors, count, position)
        }
    }

    /// Writes `length` zero bytes at `offset`.
    func writeZeros(offset: UInt64, length: UInt64) throws(SystemError) {
        let chunk = [UInt8](repeating: 0, count: 64 * 1024)
        var done: UInt64 = 0
        while done < length {
            let count = Int(min(UInt64(chunk.count), length - done))
            let position = off_t(offset + done)
            // SAFETY: writes at most chunk.count bytes of the local zero buffer.
            let written = try sys("pwrite zeros to \(path)") { chunk.withUnsafeBytes { pwrite(fd.raw, $0.baseAddress, count, position) } }
            guard written > 0 else { throw SystemError(call: "pwrite zeros to \(path) (wrote nothing)", errno: EIO) }
            done += UInt64(written)
        }
    }

    /// Deallocates `length` bytes at `offset`; later reads of the range return zeros.
    func punchHole(offset: UInt64, length: UInt64) throws(SystemError) {
        try sys("fallocate(PUNCH_HOLE) \(path)") { kvmrun_fallocate(fd.raw, KVMRUN_FALLOC_PUNCH_HOLE, Int64(offset), Int64(length)) }
    }

    func flush() throws(SystemError) {
        try sys("fsync \(path)") { fsync(fd.raw) }
    }

    /// IOV_MAX on Linux (a request has at most a queue's worth, 256, anyway).
    static let maxVectors = 1024

    typealias VectorCall = (Int32, UnsafePointer<iovec>, Int32, off_t) -> Int

    private func transfer(_ memory: GuestMemory, _ segments: [GuestSegment], _ offset: UInt64, call: String,
                          _ body: VectorCall) throws(SystemError) {
        let total = segments.reduce(0) { $0 + $1.length }
        guard total > 0 else { return }
        let ranges = segments.map { (address: $0.address, length: UInt64($0.length)) }
        let outcome: Result<Void, SystemError>
        do {
            outcome = try memory.withBytes(ofRanges: ranges) { views in
                // SAFETY: each view is a checked host range of guest RAM, valid inside this
                // closure, and the iovecs are used only in transferAll, inside it.
                var vectors = views.map { iovec(iov_base: $0.baseAddress, iov_len: $0.count) }
                return BlockFile.transferAll(fd.raw, &vectors, total: total, offset: offset, call: call, body)
            }
        } catch {
            outcome = .failure(SystemError(call: "\(call): a guest buffer is outside guest RAM", errno: EFAULT))
        }
        try outcome.get()
    }

    /// Calls `body` until `total` bytes moved, dropping what a short transfer already covered.
    static func transferAll(_ fd: Int32, _ vectors: inout [iovec], total: Int, offset: UInt64, call: String,
                                    _ body: VectorCall) -> Result<Void, SystemError> {
        var done = 0
        var first = 0
        while done < total {
            let position = off_t(offset + UInt64(done))
            let remaining = Int32(min(vectors.count - first, BlockFile.maxVectors))
            let count: Int
            do throws(SystemError) {
                // SAFETY: first < vectors.count while bytes remain, and remaining iovecs follow it.
                count = try sys(call) { vectors.withUnsafeBufferPointer { body(fd, $0.baseAddress! + first, remaining, position) } }
            } catch {
                return .failure(error)
            }
            if count == 0 { return .failure(SystemError(call: "\(call) at \(position) (end of file)", errno: EIO)) }
            done += count
            var skip = count
            while skip > 0, first < vectors.count {
                let length = vectors[first].iov_len
                if skip >= length {
                    skip -= length
                    first += 1
                } else {
                    // SAFETY: advances inside the same segment (skip < its length).
                    vectors[first].iov_base = vectors[first].iov_base.map { $0 + skip }
                    vectors[first].iov_len = length - skip
                    skip = 0
                }
            }
        }
        return .success(())
    }
}
