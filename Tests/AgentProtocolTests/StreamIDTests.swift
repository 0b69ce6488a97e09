#if canImport(Glibc)
import Glibc
#endif
import FoundationEssentials
import AgentProtocol
import Testing

@Suite("ttRPC stream ids")
struct StreamIDTests {
    @Test("odd and increasing ids are admitted, gaps allowed")
    func admitted() {
        var rule = StreamIDRule()
        for id: UInt32 in [1, 3, 9, 11, UInt32.max] { #expect(rule.admit(id) == nil, "id \(id)") }
        #expect(rule.last == UInt32.max)
    }

    @Test("even, reused and lower ids are refused with INVALID_ARGUMENT naming the id")
    func refused() {
        var rule = StreamIDRule()
        #expect(rule.admit(0)?.code == .invalidArgument)
        #expect(rule.admit(5) == nil)
        let even = rule.admit(8)
        #expect(even?.code == .invalidArgument && even?.message.contains("stream id 8 is even") == true)
        let reused = rule.admit(5)
        #expect(reused?.code == .invalidArgument && reused?.message.contains("stream id 5 reused or lower than 5") == true)
        #expect(rule.admit(3)?.code == .invalidArgument)
        // A refusal does not move the mark.
        #expect(rule.last == 5)
        #expect(rule.admit(7) == nil)
    }

    @Test("the client allocates 1, 3, 5, ... and stops at the top of the range")
    func allocator() {
        var ids = StreamIDAllocator()
        #expect([ids.next(), ids.next(), ids.next()] == [1, 3, 5])
        var rule = StreamIDRule()
        var fresh = StreamIDAllocator()
        for _ in 0..<100 { #expect(rule.admit(fresh.next()!) == nil) }
    }
}

@Suite("ttRPC fuzz entry")
struct FuzzEntryTests {
    /// Fuzz/corpus/ttrpc, the fuzz target's seeds.
    static let corpus: String = {
        var path = "\(#filePath)"
        for _ in 0..<3 { path = String(path[..<path.lastIndex(of: "/")!]) }
        return path + "/Fuzz/corpus/ttrpc"
    }()

    static func read(_ path: String) -> [UInt8] {
        guard let file = fopen(path, "rb") else { return [] }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = fread(&chunk, 1, chunk.count, file)
            guard count > 0 else { return bytes }
            bytes += chunk[0..<count]
        }
    }

    /// Each seed with the frames it holds (the oversize one swallows what follows its header).
    @Test("every seed of the fuzz corpus holds the frames it was made with", arguments: [
        ("create-container", 1), ("health-check", 2), ("exec-and-stats", 2), ("response-status", 1),
        ("interfaces-routes", 2), ("oversize-header", 0), ("zero-length-and-data", 3),
    ])
    func seeds(name: String, frames: Int) {
        let bytes = Self.read("\(Self.corpus)/\(name)")
        #expect(bytes.count > 10, "seed \(name) missing or empty")
        #expect(TTRPCFuzzEntry.consume(bytes) == frames)
    }

    @Test("valid frames are counted; empty and garbage input only return")
    func consume() throws {
        var request = Ttrpc_Request()
        request.service = ServiceName.agent
        request.method = "StartContainer"
        var start = Grpc_StartContainerRequest()
        start.containerID = "abc"
        request.payload = try .init(start.serializedBytes() as [UInt8])
        let one = try Frame(streamID: 1, type: .request, payload: request.serializedBytes()).encoded()
        #expect(TTRPCFuzzEntry.consume([3] + one + one) == 2)
        #expect(TTRPCFuzzEntry.consume([]) == 0)
        var random = SplitMix(seed: 42)
        for _ in 0..<50 {
            let bytes = (0..<Int(random.next() % 2048)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            TTRPCFuzzEntry.consume(bytes)
        }
    }
}
