#if canImport(Glibc)
import Glibc
#endif
import Memory
import Sys

/// Bytes of a kernel or initrd file, read by offset: the loader reads the ELF headers, then
/// each PT_LOAD segment's file bytes straight into guest RAM, and never the rest of a vmlinux
/// (symbols, notes beyond the PVH one). A byte array is a source too (unit tests, fixtures).
public protocol KernelSource {
    /// The file's size in bytes when it was opened.
    var size: UInt64 { get }
    /// Fills all of `buffer` with the bytes at `offset`. The caller checks that the range lies
    /// inside `size`; a file that ends early (it shrank) or fails to read throws, naming `what`.
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64, what: String) throws(BootError)
}

extension KernelSource {
    /// `count` bytes at `offset` as an array (headers, notes: small pieces).
    func bytes(at offset: UInt64, count: Int, what: String) throws(BootError) -> [UInt8] {
        guard offset <= size, UInt64(count) <= size - offset else {
            throw .file("\(what): \(hexString(offset))+\(hexString(count)) extends past the end of the file (\(size) bytes)")
        }
        var failure: BootError?
        let result = [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            do throws(BootError) {
                try read(into: UnsafeMutableRawBufferPointer(buffer), at: offset, what: what)
                initialized = count
            } catch {
                failure = error
                initialized = 0
            }
        }
        if let failure { throw failure }
        return result
    }

    /// The whole source as an array (a bzImage is decompressed by the guest from all of it).
    func allBytes(what: String) throws(BootError) -> [UInt8] {
        try bytes(at: 0, count: Int(size), what: what)
    }

    /// Reads `length` bytes at `offset` straight into guest memory at `address` (one copy,
    /// from the page cache into guest RAM), after checking both ranges.
    func load(offset: UInt64, length: UInt64, into memory: GuestMemory, at address: GuestAddress, step: String) throws(BootError) {
        guard offset <= size, length <= size - offset else {
            throw .file("\(step): file bytes \(hexString(offset))+\(hexString(length)) extend past the end of the file (\(size) bytes)")
        }
        guard length > 0 else { return }
        var failure: BootError?
        do {
            try memory.withBytes(at: address, length: length) { target in
                do throws(BootError) { try read(into: target, at: offset, what: step) } catch { failure = error }
            }
        } catch {
            throw .guestMemory(step: step, error as? MemoryError ?? .outOfRange(address, length: length))
        }
        if let failure { throw failure }
    }
}

extension Array: KernelSource where Element == UInt8 {
    public var size: UInt64 { UInt64(count) }

    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64, what: String) throws(BootError) {
        guard offset <= UInt64(count), UInt64(buffer.count) <= UInt64(count) - offset else {
            throw .file("\(what): \(hexString(offset))+\(hexString(buffer.count)) extends past the end of the file (\(count) bytes)")
        }
        guard buffer.count > 0 else { return }
        withUnsafeBytes { source in
            // SAFETY: offset + buffer.count <= count was checked above; the regions are distinct
            // (one is this array's storage, the other guest memory or a new array).
            buffer.baseAddress!.copyMemory(from: source.baseAddress!.advanced(by: Int(offset)), byteCount: buffer.count)
        }
    }
}

/// An open kernel or initrd file, read with pread(2) where the loader asks.
public final class KernelFile: KernelSource {
    public let path: String
    public let size: UInt64
    private let fd: FileDescriptor

    /// Opens `path` for reading: a regular, non-empty file of at most `limit` bytes. `role`
    /// ("kernel", "initrd") names it in errors.
    public init(path: String, role: String, limit: UInt64 = 1 << 32) throws(FileLoader.Error) {
        let (fd, size) = try FileLoader.open(path, role: role, limit: limit)
        self.path = path
        self.fd = fd
        self.size = size
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64, what: String) throws(BootError) {
        var done = 0
        while done < buffer.count {
            // SAFETY: reads into the remaining [done, count) bytes of the caller's buffer.
            let count = pread(fd.raw, buffer.baseAddress!.advanced(by: done), buffer.count - done, off_t(offset) + off_t(done))
            if count < 0 {
                if errno == EINTR { continue }
                throw .file("\(what): \(path): \(SystemError(call: "pread", errno: errno))")
            }
            if count == 0 {
                throw .file("\(what): \(path) ends at \(hexString(offset + UInt64(done))), before the \(buffer.count) bytes at \(hexString(offset)) (did it shrink while being read?)")
            }
            done += count
        }
    }
}
