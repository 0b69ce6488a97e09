#if canImport(Glibc)
import Glibc
#endif

/// A scratch file for a target's backend (a disk image): created under /dev/shm with `size`
/// bytes of a pattern, handed to `open`, then unlinked, so nothing is left behind however the
/// fuzzer process ends. Returns what `open` returned.
public func withScratchFile<T>(_ name: String, size: Int, _ open: (String) throws -> T) rethrows -> T {
    let path = "/dev/shm/kvmrun-fuzz-\(name)-\(getpid())"
    let bytes = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 7) }
    let fd = Glibc.open(path, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0o600)
    precondition(fd >= 0, "fuzz harness: cannot create \(path)")
    // SAFETY: writes the local array's own bytes.
    let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
    precondition(written == size, "fuzz harness: cannot write \(path)")
    Glibc.close(fd)
    defer { unlink(path) }
    return try open(path)
}
