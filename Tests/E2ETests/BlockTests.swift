#if canImport(Glibc)
import Glibc
#endif
import Harness
import Testing

/// Raw images shared with a guest through virtio-blk, checked byte for byte on the host.
enum BlockImages {
    /// `count` pseudo-random bytes (xorshift64*, seeded) — a pattern no zero-fill or shift fakes.
    static func pattern(count: Int, seed: UInt64) -> [UInt8] {
        var state = seed | 1
        var bytes: [UInt8] = []
        bytes.reserveCapacity(count)
        while bytes.count < count {
            state ^= state >> 12
            state ^= state << 25
            state ^= state >> 27
            let word = state &* 0x2545_F491_4F6C_DD1D
            for shift in stride(from: 0, to: 64, by: 8) where bytes.count < count {
                bytes.append(UInt8(truncatingIfNeeded: word >> UInt64(shift)))
            }
        }
        return bytes
    }

    static func read(_ path: String) -> [UInt8] {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return [] }
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: Int(max(0, lseek(fd, 0, SEEK_END))))
        // SAFETY: reads at most the array's size into it.
        let count = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        return Array(bytes.prefix(max(0, count)))
    }

    /// The hex SHA-256 of a file, by the host's sha256sum.
    static func sha256(_ path: String) throws -> String {
        let child = try ChildProcess(executable: "/usr/bin/sha256sum", arguments: [path])
        _ = child.waitForExit(timeoutMilliseconds: 30_000)
        child.drain(timeoutMilliseconds: 1000)
        return String(String(decoding: child.stdoutText, as: UTF8.self).prefix(64))
    }

    /// The value of `key=` on the console line that starts with `prefix`.
    static func field(_ output: String, line prefix: String, key: String) -> String? {
        // The serial console ends lines with "\r\n", which Swift sees as one Character.
        let lines = output.split(whereSeparator: { $0 == "\n" || $0 == "\r\n" })
        guard let line = lines.first(where: { $0.hasPrefix(prefix) }) else { return nil }
        let tokens = line.split(whereSeparator: { $0 == " " || $0 == "\r" })
        return tokens.first { $0.hasPrefix(key + "=") }.map { String($0.dropFirst(key.count + 1)) }
    }
}

@Suite("virtio-blk in a guest", .serialized,
       .enabled(if: E2E.bootsEnabled, "needs a hardware-style KVM: `make test` runs these in the nested test host (KVMRUN_E2E=1)"))
struct BlockE2ETests {
    static let mib = 1 << 20

    @Test("two disks: the guest reads the host's pattern, writes one the host reads back; a read-only disk refuses writes; discard and write-zeroes")
    func twoDisks() throws {
        let source = E2E.temporaryPath("blk-source.img")
        let scratch = E2E.temporaryPath("blk-scratch.img")
        defer { unlink(source); unlink(scratch) }
        let pattern = BlockImages.pattern(count: Self.mib, seed: UInt64(getpid()))
        E2E.writeFile(source, pattern)
        E2E.writeFile(scratch, [UInt8](repeating: 0xFF, count: 4 * Self.mib))
        let result = try E2E.boot(extraCommandLine: "kvmrun.script=blk", extra: [
            "--disk", "path=\(source),readonly=on,id=src-serial-01",
            "--disk", "path=\(scratch),id=scratch",
        ])
        let console = result.stdout
        #expect(result.status == 0, "stderr: \(result.stderr)")
        #expect(console.contains("KVMRUN_SCRIPT_EXIT=0"), "console: \(console.suffix(3000))")

        // What the guest saw.
        #expect(BlockImages.field(console, line: "blk_vda size", key: "size") == "2048")
        #expect(BlockImages.field(console, line: "blk_vdb size", key: "size") == "8192")
        #expect(BlockImages.field(console, line: "blk_vda size", key: "ro") == "1")
        #expect(BlockImages.field(console, line: "blk_vdb size", key: "ro") == "0")
        #expect(BlockImages.field(console, line: "blk_vda size", key: "serial") == "src-serial-01")
        #expect(BlockImages.field(console, line: "blk_vdb size", key: "serial") == "scratch")
        let guestSum = BlockImages.field(console, line: "blk_vda sha256", key: "sha256")
        #expect(guestSum == (try BlockImages.sha256(source)), "the guest read exactly the host's bytes")
        #expect(console.contains("blk_ro_write=refused"))

        // What the guest wrote.
        #expect(BlockImages.read(source) == pattern, "the read-only image is unchanged")
        let written = BlockImages.read(scratch)
        #expect(written.count == 4 * Self.mib, "the image keeps its size")
        guard written.count == 4 * Self.mib else { return }
        #expect(Array(written[0..<Self.mib]) == pattern, "vda copied onto vdb by the guest")
        // WRITE_ZEROES from the guest's fallocate: 64 KiB at 1.5 MiB (no unmap), 64 KiB at 1.625 MiB (unmap).
        #expect(BlockImages.field(console, line: "blk_vdb write_zeroes_max_bytes", key: "write_zeroes_max_bytes")
            == String(Int(BlockSpecLimits.maxWriteZeroesSectors) * 512))
        #expect(console.contains("blk_write_zeroes=done"))
        let zeroed = [(1_572_864, 65536), (1_703_936, 65536)]
        for (start, length) in zeroed {
            #expect(written[start..<(start + length)].allSatisfy { $0 == 0 }, "zeroed at \(start)")
        }
        let untouched = [(Self.mib, 1_572_864), (1_638_400, 1_703_936), (1_769_472, 2 * Self.mib)]
        for (start, end) in untouched {
            #expect(written[start..<end].allSatisfy { $0 == 0xFF }, "untouched \(start)..<\(end)")
        }
        let text = Array(String(repeating: "kvmrun-blk-pattern\n", count: 65536 / 19 + 1).utf8.prefix(65536))
        #expect(Array(written[(2 * Self.mib)..<(2 * Self.mib + 65536)]) == text, "the guest's dd at 2 MiB")
        #expect(written[(2 * Self.mib + 65536)..<(3 * Self.mib)].allSatisfy { $0 == 0xFF })
        if console.contains("blk_discard=done") {
            #expect(written[(3 * Self.mib)...].allSatisfy { $0 == 0 }, "the discarded MiB reads back as zeros")
        } else {
            #expect(written[(3 * Self.mib)...].allSatisfy { $0 == 0xFF })
        }
    }
}

/// The device's limits as the guest should see them (E2E tests do not link the VMM).
enum BlockSpecLimits {
    static let maxWriteZeroesSectors = 1 << 16
}

/// `--disk` mistakes are usage errors (status 64) named before any VM exists; no /dev/kvm needed.
@Suite("--disk bad input")
struct BlockBadInputTests {
    @Test("a missing image file is named with the drive id")
    func missingImage() throws {
        let result = try E2E.run(["vm", "run", "--kernel", E2E.binary, "--disk", "path=/nonexistent/disk.img,id=data"])
        #expect(result.status == 64)
        #expect(result.stderr.contains("--disk id=data: /nonexistent/disk.img: no such file"), "stderr: \(result.stderr)")
    }

    @Test("bad option text and duplicate ids are refused naming the problem", arguments: [
        (["--disk", "path=/a.img,cache=none"], "unknown key 'cache'"),
        (["--disk", "path=/a.img,readonly=1"], "readonly must be on or off"),
        (["--disk", "readonly=on"], "path=FILE is missing"),
        (["--disk", "path=/a.img,id=x", "--disk", "path=/b.img,id=x"], "two disks have the id 'x'"),
    ])
    func badText(arguments: [String], message: String) throws {
        let result = try E2E.run(["vm", "run", "--kernel", E2E.binary] + arguments)
        #expect(result.status == 64)
        #expect(result.stderr.contains(message), "stderr: \(result.stderr)")
    }
}
