#if canImport(Glibc)
import Glibc
#endif
@testable import Runtime
import Testing

@Suite("Rootfs image cache")
struct ImageCacheTests {
    /// A file `name` in `directory` last modified `age` seconds before `now`.
    /// A fresh empty directory for one test, removed by `body`'s end.
    static func withDirectory(_ name: String, _ body: (String) throws -> Void) rethrows {
        let directory = "/var/tmp/kvmrun-images-\(name)-\(getpid())"
        _ = system("rm -rf \(directory) && mkdir -p \(directory)")
        defer { _ = system("rm -rf \(directory)") }
        try body(directory)
    }

    static func file(_ directory: String, _ name: String, age: Int, now: Int) {
        let path = directory + "/" + name
        close(open(path, O_WRONLY | O_CREAT, 0o600))
        var times = [timespec(tv_sec: now - age, tv_nsec: 0), timespec(tv_sec: now - age, tv_nsec: 0)]
        _ = utimensat(AT_FDCWD, path, &times, 0)
    }

    @Test("Beyond `keep`, the least recently used images go, never one used within the grace period; dead builds go after an hour")
    func prune() {
        Self.withDirectory("prune") { directory in
            let now = time(nil)
            Self.file(directory, "a.ext4", age: 10, now: now)
            Self.file(directory, "b.ext4", age: 5000, now: now)
            Self.file(directory, "c.ext4", age: 9000, now: now)
            Self.file(directory, "d.ext4", age: 60, now: now)            // old in rank, inside the grace period
            Self.file(directory, "e.ext4.tmp-123", age: 7200, now: now)  // a build that died
            Self.file(directory, "f.ext4.tmp-456", age: 30, now: now)    // a build under way
            Self.file(directory, "notes.txt", age: 99999, now: now)
            let removed = ImageCache.prune(directory, keep: 1, now: now)
            #expect(removed.sorted() == ["b.ext4", "c.ext4", "e.ext4.tmp-123"])
            #expect(StateStore.list(directory) == ["a.ext4", "d.ext4", "f.ext4.tmp-456", "notes.txt"])
            #expect(ImageCache.prune(directory, keep: 16, now: now).isEmpty)
        }
    }

    @Test("Taking a cached image marks it used")
    func touch() {
        Self.withDirectory("touch") { directory in
            let now = time(nil)
            Self.file(directory, "a.ext4", age: 9000, now: now)
            ImageCache.touch(directory + "/a.ext4")
            var info = stat()
            #expect(stat(directory + "/a.ext4", &info) == 0 && now - info.st_mtim.tv_sec < 60)
        }
    }
}
