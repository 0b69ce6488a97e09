// The VMM side: `kvmrun vm run --netns PATH --net tap=NAME` opens the sandbox's TAP inside the
// namespace. Proof without booting a guest (net devices attach before the kernel loads): while
// this test holds the TAP open, the VMM's TUNSETIFF on that existing single-queue TAP fails
// with EBUSY; in any other namespace no such interface exists and the VMM would create one.
#if canImport(Glibc)
import Glibc
#endif
@testable import Runtime
import Sys
import Testing

@Suite("vm run --netns", .serialized)
struct VMNetnsTests {
    static let packageRoot: String = {
        var parts = "\(#filePath)".split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(3)   // Tests/RuntimeTests/VMNetnsTests.swift
        return parts.joined(separator: "/")
    }()
    static let binary = packageRoot + "/.build/debug/kvmrun"
    static let runnable = access(binary, X_OK) == 0 && access("/dev/kvm", R_OK | W_OK) == 0

    @Test("the VMM finds the existing TAP in the namespace (busy while held), and leaves it in place",
          .enabled(if: runnable, "needs .build/debug/kvmrun and /dev/kvm"))
    func vmmOpensTheTapInTheNamespace() throws {
        let fixture = try NetnsFixture("vmm")
        defer { fixture.remove() }
        let network = try SandboxNetwork.attach(netnsPath: fixture.sandboxPath, tapName: SandboxNetworkTests.tap)
        defer { _ = network.detach() }
        let arguments = ["vm", "run", "--netns", fixture.sandboxPath, "--kernel", "/etc/hostname", "--console", "none",
                         "--net", "tap=\(network.tapName),mac=\(network.interface.mac)"]
        do {
            let held = try NetworkNamespace.within(fixture.sandboxPath) { () throws(RuntimeError) -> FileDescriptor in
                do { return try TapDevice.open(name: network.tapName) } catch { throw .failed(step: "open tap", reason: "\(error)") }
            }
            defer { held.close() }
            let child = try ChildSleeper(Self.binary, arguments).child
            #expect(child.waitForExit(timeoutMilliseconds: 20_000) == 2)
            child.drain(timeoutMilliseconds: 1000)
            let text = String(decoding: child.stderrText, as: UTF8.self)
            #expect(text.contains("cannot attach to tap \(network.tapName): EBUSY"), "\(text)")
        }
        // Not held: the VMM attaches (then fails on the kernel, a text file) and leaves the TAP.
        let child = try ChildSleeper(Self.binary, arguments).child
        #expect(child.waitForExit(timeoutMilliseconds: 20_000) == 2)
        child.drain(timeoutMilliseconds: 1000)
        #expect(!String(decoding: child.stderrText, as: UTF8.self).contains("tap"), "\(String(decoding: child.stderrText, as: UTF8.self))")
        #expect(try ip("-n", fixture.sandbox, "link", "show").contains(network.tapName))
    }

    @Test("--netns naming no file is a usage error", .enabled(if: runnable, "needs .build/debug/kvmrun and /dev/kvm"))
    func missingNamespace() throws {
        let child = try ChildSleeper(Self.binary, ["vm", "run", "--netns", "/run/netns/kvmrun-none-\(getpid())", "--kernel", "/etc/hostname"]).child
        #expect(child.waitForExit(timeoutMilliseconds: 20_000) == 64)
        child.drain(timeoutMilliseconds: 1000)
        #expect(String(decoding: child.stderrText, as: UTF8.self).contains("no such file"))
    }
}
