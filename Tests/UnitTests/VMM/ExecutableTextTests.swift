#if canImport(Glibc)
import Glibc
#endif
import Harness
import Testing
import Sys
@testable import VMM

@Suite("Letting go of the executable's start-up code pages")
struct ExecutableTextTests {
    @Test("the executable's own mappings are picked, with whether they are writable")
    func picksMappings() {
        let maps = """
        00400000-01095000 r-xp 00000000 fd:00 42      /opt/my vmm/kvmrun
        01095000-0109e000 r--p 00c94000 fd:00 42      /opt/my vmm/kvmrun
        0109e000-01315000 rw-p 00c9d000 fd:00 42      /opt/my vmm/kvmrun
        7f0000000000-7f0000100000 r-xp 00000000 fd:00 77      /usr/lib/libother.so
        7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0       [stack]
        """
        let found = ExecutableText.mappings(maps: maps, executable: "/opt/my vmm/kvmrun")
        #expect(found == [
            .init(start: 0x40_0000, end: 0x109_5000, writable: false),
            .init(start: 0x109_5000, end: 0x109_e000, writable: false),
            .init(start: 0x109_e000, end: 0x131_5000, writable: true),
        ])
        #expect(ExecutableText.mappings(maps: maps, executable: "/elsewhere").isEmpty)
    }

    @Test("in a writable mapping only present, file-backed (never written) pages are dropped")
    func cleanRuns() {
        let present: UInt64 = 1 << 63, file: UInt64 = 1 << 61
        let entries: [UInt64] = [present | file, present | file, present, 0, present | file, file, present | file]
        let runs = ExecutableText.cleanFileRuns(pagemap: entries)
        #expect(runs.map(\.first) == [0, 4, 6])
        #expect(runs.map(\.count) == [2, 1, 1])
    }

    @Test("after the release, this process's code mapping is less resident and the code still runs")
    func releases() throws {
        func residentCodeKiB() -> UInt64 {
            guard let text = ProcessMemory.readSmall("/proc/self/smaps") else { return 0 }
            var inCode = false, total: UInt64 = 0
            for line in text.split(separator: "\n") {
                if line.first?.isHexDigit == true, line.contains("-") {
                    inCode = line.split(separator: " ").dropFirst().first == "r-xp" && line.contains("kvmrunPackageTests")
                } else if inCode, line.hasPrefix("Rss:") {
                    total += UInt64(line.filter(\.isNumber)) ?? 0
                }
            }
            return total
        }
        let before = residentCodeKiB()
        try #require(before > 1024, "the test binary's code is resident (\(before) KiB)")
        #expect(ExecutableText.releaseResidentPages() > 0)
        let after = residentCodeKiB()
        #expect(after < before / 2, "resident code \(before) KiB before, \(after) KiB after")
    }

    @Test("the settled release waits for its deadline, then releases once")
    func settledReleaseOnce() {
        // A counting release: the real one would race the test above, which measures this
        // process's resident code (swift-testing runs a suite's tests in parallel).
        final class Calls: @unchecked Sendable { var count = 0 }
        let calls = Calls()
        var later = SettledRelease(delay: .seconds(60)) { calls.count += 1; return 4096 }
        later.start()
        #expect(later.poll() == 0)
        #expect(!later.done && calls.count == 0)
        var now = SettledRelease(delay: .zero) { calls.count += 1; return 4096 }
        #expect(now.poll() == 0, "nothing happens before start()")
        now.start()
        #expect(now.poll() == 4096)
        #expect(now.done && calls.count == 1)
        #expect(now.poll() == 0)
        #expect(calls.count == 1, "released once")
    }
}
