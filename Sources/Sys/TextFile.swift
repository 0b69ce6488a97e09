#if canImport(Glibc)
import Glibc
#endif

/// Reads a file whole; nil if it cannot be opened (errno says why).
public func readFileBytes(_ path: String) -> [UInt8]? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        // SAFETY: reads into the local chunk, at most its size.
        let count = read(fd, &chunk, chunk.count)
        if count < 0 && errno == EINTR { continue }
        if count <= 0 { break }
        bytes += chunk[0..<count]
    }
    return bytes
}

/// Reads a small text file (a /proc or /sys file, a console log) whole; nil if it cannot be
/// opened or is empty.
public func readTextFile(_ path: String) -> String? {
    guard let bytes = readFileBytes(path), !bytes.isEmpty else { return nil }
    return String(decoding: bytes, as: UTF8.self)
}
