#if canImport(Glibc)
import Glibc
#endif

/// A bundle's rootfs directory as an ext4 image (e2fsprogs' `mkfs.ext4 -d`), built once per
/// rootfs content and kept in ROOT/images/KEY.ext4; each container that writes its root gets
/// its own copy (a reflink where the filesystem can, else a sparse copy), a read-only root is
/// attached as the shared image itself. ImageCache keeps the directory bounded.
public enum RootfsImage {
    /// Headroom for what a container writes to its root, beyond what the tree holds.
    public static let writableHeadroomMiB: UInt64 = 256

    /// The cached image for `rootfs`, built if missing.
    public static func cached(rootfs: String, imagesDirectory: String) throws(RuntimeError) -> String {
        var info = stat()
        guard stat(rootfs, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR else {
            throw .invalidInput("rootfs \(rootfs): not a directory")
        }
        try StateStore.makeDirectory(imagesDirectory)
        var digest = TreeDigest()
        try digest.add(tree: rootfs)
        let image = "\(imagesDirectory)/\(digest.hex).ext4"
        if access(image, R_OK) == 0 {
            ImageCache.touch(image)
            return image
        }
        let sizeMiB = max(64, digest.bytes / (1 << 20) * 5 / 4 + 32) + writableHeadroomMiB
        let temporary = image + ".tmp-\(getpid())"
        do {
            try runTool("mkfs.ext4", ["-q", "-F", "-d", rootfs, "-L", "rootfs", "-O", "^has_journal",
                                      "-E", "root_owner=0:0", temporary, "\(sizeMiB)M"],
                        step: "make the rootfs image of \(rootfs)")
        } catch {
            unlink(temporary)
            throw error
        }
        guard rename(temporary, image) == 0 else {
            unlink(temporary)
            throw .failed(step: "store the rootfs image \(image)", reason: errnoText())
        }
        ImageCache.prune(imagesDirectory)
        return image
    }

    /// A container's own writable copy of `image` at `destination`.
    public static func copy(_ image: String, to destination: String) throws(RuntimeError) {
        let step = "copy the rootfs image to \(destination)"
        let input = open(image, O_RDONLY | O_CLOEXEC)
        guard input >= 0 else { throw .failed(step: step, reason: "open \(image): \(errnoText())") }
        defer { close(input) }
        let output = open(destination, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard output >= 0 else { throw .failed(step: step, reason: errnoText()) }
        defer { close(output) }
        // FICLONE (_IOW(0x94, 9, int)): a copy-on-write clone on btrfs/xfs; EOPNOTSUPP elsewhere.
        if ioctl(output, 0x4004_9409, input) == 0 { return }
        var info = stat()
        fstat(input, &info)
        guard ftruncate(output, info.st_size) == 0 else { throw .failed(step: step, reason: "ftruncate: \(errnoText())") }
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var offset = lseek(input, 0, 3 /* SEEK_DATA */)
        while offset >= 0 && offset < info.st_size {
            let end = lseek(input, offset, 4 /* SEEK_HOLE */)
            var position = offset
            while position < end {
                let want = min(buffer.count, Int(end - position))
                // SAFETY: reads and writes stay inside the local buffer (want ≤ its size).
                let got = buffer.withUnsafeMutableBytes { pread(input, $0.baseAddress, want, position) }
                guard got > 0 else { throw .failed(step: step, reason: "read \(image): \(errnoText())") }
                guard buffer.withUnsafeBytes({ pwrite(output, $0.baseAddress, got, position) }) == got else {
                    throw .failed(step: step, reason: "write: \(errnoText())")
                }
                position += got
            }
            offset = lseek(input, end, 3 /* SEEK_DATA */)
        }
    }
}

/// A key for a directory tree's content: every entry's relative path, type, mode, owner, size,
/// modification time and symlink target, hashed in sorted order (two FNV-1a 64-bit hashes with
/// different offsets). The same image content under another path gets the same key.
struct TreeDigest {
    private var first: UInt64 = 0xcbf2_9ce4_8422_2325
    private var second: UInt64 = 0x8422_2325_cbf2_9ce4
    private(set) var bytes: UInt64 = 0
    private var entries = 0
    static let maximumEntries = 1_000_000

    var hex: String {
        func pad(_ value: UInt64) -> String { let text = String(value, radix: 16); return String(repeating: "0", count: 16 - text.count) + text }
        return pad(first) + pad(second)
    }

    mutating func add(tree: String) throws(RuntimeError) {
        try walk(tree, relative: "")
    }

    private mutating func mix(_ text: String) {
        for byte in text.utf8 + [0] {
            first = (first ^ UInt64(byte)) &* 0x100_0000_01b3
            second = (second ^ UInt64(byte)) &* 0x100_0000_01b3
        }
    }

    private mutating func walk(_ path: String, relative: String) throws(RuntimeError) {
        for name in StateStore.list(path) {
            entries += 1
            guard entries <= TreeDigest.maximumEntries else {
                throw .invalidInput("rootfs: more than \(TreeDigest.maximumEntries) files")
            }
            let full = path + "/" + name, rel = relative + "/" + name
            var info = stat()
            guard lstat(full, &info) == 0 else { throw .failed(step: "read the rootfs", reason: "lstat \(full): \(errnoText())") }
            mix("\(rel)|\(info.st_mode)|\(info.st_uid)|\(info.st_gid)|\(info.st_size)|\(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec)|\(info.st_rdev)")
            bytes &+= UInt64(max(0, info.st_blocks)) * 512
            switch info.st_mode & S_IFMT {
            case S_IFDIR:
                try walk(full, relative: rel)
            case S_IFLNK:
                var target = [CChar](repeating: 0, count: 4096)
                let count = readlink(full, &target, target.count - 1)
                if count > 0 { mix(String(decoding: target[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)) }
            default:
                break
            }
        }
    }
}
