// CopyFile as Kata's agent has it: a file, directory or symlink below the shared directory,
// written in chunks (offset) into "<path>.tmp" and renamed into place once it has its full
// size; parent directories made with dir_mode and the immediate parent chowned.
#if canImport(Glibc)
import Glibc
#endif
import Sys

public struct CopyFileRequest: Sendable {
    public var path: String
    public var fileSize: Int64
    public var fileMode: UInt32
    public var dirMode: UInt32
    public var uid: Int32
    public var gid: Int32
    public var offset: Int64
    public var data: [UInt8]
    public init(path: String, fileSize: Int64, fileMode: UInt32, dirMode: UInt32, uid: Int32, gid: Int32, offset: Int64, data: [UInt8]) {
        self.path = path
        self.fileSize = fileSize
        self.fileMode = fileMode
        self.dirMode = dirMode
        self.uid = uid
        self.gid = gid
        self.offset = offset
        self.data = data
    }
}

public enum CopyFile {
    /// Kata's KATA_GUEST_SHARE_DIR: CopyFile writes nowhere else.
    public static let sharedDirectory = "/run/kata-containers/shared/containers"

    public static func copy(_ request: CopyFileRequest, root: String = sharedDirectory) throws(AgentError) {
        let parts = request.path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        let rootParts = root.split(separator: "/").map(String.init)
        guard request.path.hasPrefix("/"), parts.count > rootParts.count, Array(parts.prefix(rootParts.count)) == rootParts,
              !parts.contains(".."), !parts.contains("."), !request.path.utf8.contains(0) else {
            throw AgentError.invalid("CopyFile: \(request.path) must be a canonical path below \(root)")
        }
        guard request.offset >= 0, request.fileSize >= 0 else {
            throw AgentError.invalid("CopyFile \(request.path): negative offset or file_size")
        }
        let uid = uid_t(bitPattern: request.uid), gid = gid_t(bitPattern: request.gid)
        var directory = root
        do throws(SystemError) {
            try Files.makeDirectories(root)
            for part in parts[rootParts.count..<(parts.count - 1)] {
                directory += "/" + part
                if mkdir(directory, mode_t(request.dirMode & 0o777)) != 0, errno != EEXIST {
                    throw SystemError(call: "mkdir \(directory)", errno: errno)
                }
                try refuseSymlink(directory)
            }
            if directory != root { _ = chown(directory, uid, gid) }
        } catch {
            throw AgentError(error, while: "CopyFile")
        }
        let path = request.path
        let type = request.fileMode & 0o170000
        do throws(SystemError) {
            switch type {
            case 0o040000:   // S_IFDIR
                if mkdir(path, 0o700) != 0, errno != EEXIST { throw SystemError(call: "mkdir \(path)", errno: errno) }
                try refuseSymlink(path)
                _ = chmod(path, mode_t(request.fileMode & 0o7777))
                _ = chown(path, uid, gid)
            case 0o120000:   // S_IFLNK
                unlink(path)
                let target = String(decoding: request.data, as: UTF8.self)
                if symlink(target, path) != 0 { throw SystemError(call: "symlink \(path) -> \(target)", errno: errno) }
                _ = lchown(path, uid, gid)
            default:
                try writeChunk(request, uid: uid, gid: gid)
            }
        } catch {
            throw AgentError(error, while: "CopyFile")
        }
    }

    private static func refuseSymlink(_ path: String) throws(SystemError) {
        var info = stat()
        guard lstat(path, &info) == 0 else { throw SystemError(call: "lstat \(path)", errno: errno) }
        if (info.st_mode & S_IFMT) == S_IFLNK { throw SystemError(call: "\(path) is a symlink", errno: ELOOP) }
    }

    private static func writeChunk(_ request: CopyFileRequest, uid: uid_t, gid: gid_t) throws(SystemError) {
        let temporary = request.path + ".tmp"
        let flags = O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW | (request.offset == 0 ? O_TRUNC : 0)
        let fd = try sys("open \(temporary)") { open(temporary, flags, mode_t(request.fileMode & 0o777)) }
        defer { close(fd) }
        var written = 0
        while written < request.data.count {
            // SAFETY: writes within the array's bounds.
            let count = try sys("write \(temporary)") {
                request.data.withUnsafeBytes { pwrite(fd, $0.baseAddress! + written, $0.count - written, off_t(request.offset) + off_t(written)) }
            }
            written += count
        }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw SystemError(call: "fstat \(temporary)", errno: errno) }
        guard Int64(info.st_size) == request.fileSize else { return }   // more chunks to come
        _ = fchmod(fd, mode_t(request.fileMode & 0o7777))
        _ = fchown(fd, uid, gid)
        try sys("rename \(temporary) to \(request.path)") { rename(temporary, request.path) }
    }
}
