// What the runtime reads of the host's file system to copy a bind mount's source into the
// guest: the kind and size of a path (lstat, never following the last link), the real path of
// a bind source, a directory's names, a link's target, and a file's bytes by offset.
#if canImport(Glibc)
import Glibc
#endif
import Sys

enum HostFiles {
    enum Kind: Equatable {
        case regular, directory, symlink, characterDevice, blockDevice, socket, fifo, other
    }

    struct Info: Equatable {
        var kind: Kind
        var size: Int64
        var mode: UInt32   // the permission bits (and setuid/setgid/sticky)
        var uid: UInt32
        var gid: UInt32
    }

    /// lstat: a symbolic link is reported as one.
    static func info(_ path: String) throws(SystemError) -> Info {
        var status = stat()
        guard lstat(path, &status) == 0 else { throw SystemError(call: "lstat \(path)", errno: errno) }
        let kind: Kind = switch status.st_mode & S_IFMT {
        case S_IFREG: .regular
        case S_IFDIR: .directory
        case S_IFLNK: .symlink
        case S_IFCHR: .characterDevice
        case S_IFBLK: .blockDevice
        case S_IFSOCK: .socket
        case S_IFIFO: .fifo
        default: .other
        }
        return Info(kind: kind, size: Int64(status.st_size), mode: UInt32(status.st_mode & 0o7777),
                    uid: status.st_uid, gid: status.st_gid)
    }

    /// The path with every symbolic link resolved (a bind mount follows them on the host).
    static func realPath(_ path: String) throws(SystemError) -> String {
        guard let resolved = realpath(path, nil) else { throw SystemError(call: "realpath \(path)", errno: errno) }
        // SAFETY: realpath returned a malloc'd NUL-terminated string; it is read once, then freed.
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// The names in a directory (without "." and ".."), sorted, so a copy is deterministic.
    static func names(_ directory: String) throws(SystemError) -> [String] {
        guard let stream = opendir(directory) else { throw SystemError(call: "opendir \(directory)", errno: errno) }
        defer { closedir(stream) }
        var names: [String] = []
        while true {
            errno = 0
            guard let entry = readdir(stream) else {
                if errno != 0 { throw SystemError(call: "readdir \(directory)", errno: errno) }
                break
            }
            // SAFETY: d_name is a NUL-terminated array inside the dirent readdir returned, valid
            // until the next readdir on this stream; it is copied into a String at once.
            let name = withUnsafePointer(to: &entry.pointee.d_name) { pointer in
                pointer.withMemoryRebound(to: CChar.self, capacity: MemoryLayout.size(ofValue: entry.pointee.d_name)) {
                    String(cString: $0)
                }
            }
            if name != ".", name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    /// A symbolic link's target, as bytes (CopyFile sends it as the request's data).
    static func linkTarget(_ path: String) throws(SystemError) -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: Int(PATH_MAX) + 1)
        // SAFETY: readlink writes at most buffer.count bytes into the array's storage.
        let count = try sys("readlink \(path)") {
            buffer.withUnsafeMutableBytes { readlink(path, $0.baseAddress!.assumingMemoryBound(to: CChar.self), $0.count) }
        }
        guard count < buffer.count else { throw SystemError(call: "readlink \(path)", errno: ENAMETOOLONG) }
        return Array(buffer[0..<count])
    }

    /// An open regular file, read by offset. Opened without following a last symbolic link.
    final class Reader {
        let path: String
        let fd: Int32
        let info: Info

        init(_ path: String) throws(SystemError) {
            self.path = path
            fd = try sys("open \(path)") { open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY) }
            var status = stat()
            guard fstat(fd, &status) == 0 else {
                let error = SystemError(call: "fstat \(path)", errno: errno)
                close(fd)
                throw error
            }
            info = Info(kind: (status.st_mode & S_IFMT) == S_IFREG ? .regular : .other, size: Int64(status.st_size),
                        mode: UInt32(status.st_mode & 0o7777), uid: status.st_uid, gid: status.st_gid)
        }

        deinit { close(fd) }

        /// Exactly `count` bytes at `offset`; a file that got shorter meanwhile is an error.
        func read(at offset: Int64, count: Int) throws(SystemError) -> [UInt8] {
            var bytes = [UInt8](repeating: 0, count: count)
            var done = 0
            while done < count {
                // SAFETY: pread writes at most count - done bytes after the first done bytes of the array.
                let got = try sys("pread \(path)") {
                    bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + done, count - done, off_t(offset) + off_t(done)) }
                }
                guard got > 0 else { throw SystemError(call: "pread \(path) (the file got shorter while it was copied)", errno: EIO) }
                done += got
            }
            return bytes
        }
    }
}
