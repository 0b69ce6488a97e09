#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// Socket files the VMM created (the vsock `uds`), removed when their owner goes away or, at the
/// latest, when the process exits (`atexit`), whichever comes first. A file is only removed
/// while it is still the one we bound (same inode), never a newer one at the same path.
enum SocketFiles {
    private static let registered = Mutex<[String: ino_t]>([:])
    private static let exitHook: Void = { atexit { SocketFiles.removeAll() } }()

    static func register(_ path: String) {
        _ = exitHook
        var info = stat()
        guard lstat(path, &info) == 0 else { return }
        let inode = info.st_ino
        registered.withLock { $0[path] = inode }
    }

    static func remove(_ path: String) {
        guard let inode = registered.withLock({ $0.removeValue(forKey: path) }) else { return }
        unlinkIfSame(path, inode)
    }

    static func removeAll() {
        let all = registered.withLock { files in
            defer { files.removeAll() }
            return files
        }
        for (path, inode) in all { unlinkIfSame(path, inode) }
    }

    private static func unlinkIfSame(_ path: String, _ inode: ino_t) {
        var info = stat()
        if lstat(path, &info) == 0, info.st_ino == inode { unlink(path) }
    }
}
