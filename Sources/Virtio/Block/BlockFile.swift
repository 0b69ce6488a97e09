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

    /// Reads exactly `length` bytes at `offset` into guest memory at `address` (already known to
    /// be inside guest RAM). Reading past the end of the file (it shrank) is an EIO.
    func read(into memory: GuestMemory, at address: GuestAddress, length: Int, offset: UInt64) throws(SystemError) {
        try transfer(memory, address, length, offset, call: "pread \(path)") { fd, pointer, count, position in
            pread(fd, pointer, count, position)
        }
    }

    /// Writes `length` bytes from guest memory at `address` to the file at `offset`.
    func write(from memory: GuestMemory, at address: GuestAddress, length: Int, offset: UInt64) throws(SystemError) {
        try transfer(memory, address, length, offset, call: "pwrite \(path)") { fd, pointer, count, position in
            pwrite(fd, pointer, count, position)
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

    private func transfer(_ memory: GuestMemory, _ address: GuestAddress, _ length: Int, _ offset: UInt64, call: String,
                          _ body: (Int32, UnsafeMutableRawPointer, Int, off_t) -> Int) throws(SystemError) {
        guard length > 0 else { return }
        let fd = self.fd.raw
        let outcome: Result<Void, SystemError>
        do {
            outcome = try memory.withBytes(at: address, length: UInt64(length)) { buffer -> Result<Void, SystemError> in
                var done = 0
                while done < length {
                    // SAFETY: buffer is the checked host view of [address, address + length);
                    // done < length, so the pointer and count stay inside it.
                    let pointer = buffer.baseAddress!.advanced(by: done)
                    let position = off_t(offset + UInt64(done))
                    let count: Int
                    do throws(SystemError) {
                        count = try sys(call) { body(fd, pointer, length - done, position) }
                    } catch {
                        return .failure(error)
                    }
                    if count == 0 { return .failure(SystemError(call: "\(call) at \(position) (end of file)", errno: EIO)) }
                    done += count
                }
                return .success(())
            }
        } catch {
            outcome = .failure(SystemError(call: "\(call): guest buffer \(address)+\(length) outside guest RAM", errno: EFAULT))
        }
        try outcome.get()
    }
}
