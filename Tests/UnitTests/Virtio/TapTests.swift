#if canImport(Glibc)
import Glibc
#endif
import Testing
import Virtio

/// The real /dev/net/tun: creating a tap, its removal when the descriptor closes, and the errors
/// that name the tap. Needs root (CAP_NET_ADMIN) and the tun module; skipped otherwise.
@Suite("TAP devices", .serialized,
       .enabled(if: getuid() == 0 && access("/dev/net/tun", R_OK | W_OK) == 0, "needs root and /dev/net/tun"))
struct TapTests {
    static func name(_ suffix: String) -> String { "kvmut\(getpid() % 100_000)\(suffix)" }

    @Test("a tap opened under an unused name is created, up, and gone once it is closed")
    func createdTapVanishes() throws {
        let name = TapTests.name("a")
        #expect(!Tap.exists(name))
        do {
            let tap = try Tap.open(name: name)
            #expect(tap.created)
            #expect(Tap.exists(name))
            let flags = String(decoding: try readSys("/sys/class/net/\(name)/flags"), as: UTF8.self)
            let value = Int(flags.filter { !$0.isWhitespace }.dropFirst(2), radix: 16) ?? 0
            #expect(value & 1 == 1, "IFF_UP set, flags \(flags)")
        }
        #expect(!Tap.exists(name), "the kernel removed the tap with its last descriptor")
    }

    @Test("a tap in use cannot be attached twice: EBUSY, naming the tap")
    func busy() throws {
        let name = TapTests.name("b")
        let first = try Tap.open(name: name)
        #expect(throws: Tap.OpenError.self) { _ = try Tap.open(name: name) }
        do {
            _ = try Tap.open(name: name)
        } catch {
            #expect(error.errno == EBUSY)
            #expect(error.message.contains("cannot attach to tap \(name)"), "\(error)")
            #expect(error.message.contains("in use"), "\(error)")
        }
        #expect(Tap.exists(name), "a failed attach leaves the tap alone")
        _ = first
    }

    @Test("an interface that is not a tap (lo) is refused with EINVAL, naming it")
    func notATap() {
        do {
            _ = try Tap.open(name: "lo")
            Issue.record("lo was accepted as a tap")
        } catch {
            #expect(error.errno == EINVAL)
            #expect(error.message.contains("tap lo"), "\(error)")
        }
    }

    private func readSys(_ path: String) throws -> [UInt8] {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return [] }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 64)
        // SAFETY: reads at most 64 bytes into the local buffer.
        let count = read(fd, &buffer, buffer.count)
        return Array(buffer[0..<max(0, count)])
    }
}
