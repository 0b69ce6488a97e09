#if canImport(Glibc)
import Glibc
#endif

/// Keeps ROOT/images bounded. Each image's modification time is its last use (set when a
/// container takes it); after a new image is built, the least recently used ones beyond
/// `keep` go, and leftovers of builds that died (`*.ext4.tmp-PID`) older than an hour. An
/// image used within `grace` seconds is never removed: another `kvmrun create` may be about
/// to copy or attach it (a removed image a VMM already has open stays readable to it).
public enum ImageCache {
    /// How many images stay, at least (a podman host with many images rebuilds the rest on use).
    nonisolated(unsafe) public static var keep = 16
    public static let graceSeconds = 600
    static let abandonedBuildSeconds = 3600

    /// Marks `image` as used now.
    static func touch(_ image: String) {
        // nil times: both set to now.
        _ = utimensat(AT_FDCWD, image, nil, 0)
    }

    /// Removes what the policy above says may go; returns the names removed.
    @discardableResult
    static func prune(_ directory: String, keep: Int = ImageCache.keep, now: Int = time(nil)) -> [String] {
        var images: [(name: String, used: Int)] = []
        var removed: [String] = []
        for name in StateStore.list(directory) {
            var info = stat()
            guard lstat(directory + "/" + name, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { continue }
            let used = info.st_mtim.tv_sec
            if name.contains(".ext4.tmp-") {
                if now - used > abandonedBuildSeconds, unlink(directory + "/" + name) == 0 { removed.append(name) }
            } else if name.hasSuffix(".ext4") {
                images.append((name, used))
            }
        }
        images.sort { $0.used > $1.used }
        for image in images.dropFirst(max(0, keep)) where now - image.used > graceSeconds {
            if unlink(directory + "/" + image.name) == 0 { removed.append(image.name) }
        }
        return removed
    }
}
