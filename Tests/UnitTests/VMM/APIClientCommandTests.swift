import Testing
@testable import kvmrun

@Suite("Control API: CLI options")
struct APIClientCommandTests {
    @Test("vm run refuses an --api-socket path a Unix socket cannot have")
    func socketPathLength() throws {
        #expect(throws: (any Error).self) {
            try VMRunCommand.parse(["--kernel", "k", "--api-socket", "/tmp/" + String(repeating: "s", count: 103)])
        }
        #expect(throws: (any Error).self) { try VMRunCommand.parse(["--kernel", "k", "--api-socket", ""]) }
        let fits = try VMRunCommand.parse(["--kernel", "k", "--api-socket", "/tmp/" + String(repeating: "s", count: 102)])
        #expect(fits.apiSocket?.utf8.count == 107)
    }

    @Test("memory --size takes whole MiB; drive --id takes no slash; all need --api-socket")
    func clientOptions() throws {
        #expect(try VMMemoryCommand.parse(["--api-socket", "s", "--size", "1G"]).requestedMiB() == 1024)
        #expect(try VMMemoryCommand.parse(["--api-socket", "s"]).requestedMiB() == nil)
        #expect(throws: (any Error).self) { try VMMemoryCommand.parse(["--api-socket", "s", "--size", "1500K"]) }
        #expect(throws: (any Error).self) { try VMMemoryCommand.parse(["--api-socket", "s", "--size", "lots"]) }
        #expect(throws: (any Error).self) { try VMDriveCommand.parse(["--api-socket", "s", "--id", "a/b", "--path", "/x"]) }
        #expect(throws: (any Error).self) { try VMDriveCommand.parse(["--api-socket", "s", "--id", "a", "--path", ""]) }
        #expect(throws: (any Error).self) { try VMInfoCommand.parse([]) }
        #expect(VMPauseCommand.body.map { String(decoding: $0, as: UTF8.self) } == #"{"state":"Paused"}"#)
        #expect(VMShutdownCommand.body.map { String(decoding: $0, as: UTF8.self) } == #"{"action_type":"Shutdown"}"#)
    }
}
