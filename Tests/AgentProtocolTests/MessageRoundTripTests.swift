import AgentProtocol
import FoundationEssentials
import SwiftProtobuf
import Testing

/// Every request and response message of the agent protocol, encoded and decoded again; and the
/// wire bytes of a few, written out by hand from the field numbers, so a renumbered field fails.
@Suite("agent protocol messages")
struct MessageRoundTripTests {
    static let methods: [any RPCMethodDescriptor] = AgentRPC.all + HealthRPC.all
    static let envelopes: [any SwiftProtobuf.Message.Type] = [Ttrpc_Request.self, Ttrpc_Response.self, Types_ARPNeighbor.self]

    @Test("the method table has all 26 AgentService calls and the two Health calls, with distinct names")
    func table() {
        #expect(AgentRPC.all.count == 26 && HealthRPC.all.count == 2)
        #expect(Set(Self.methods.map(\.path)).count == 28)
        #expect(AgentRPC.createContainer.path == "/grpc.AgentService/CreateContainer")
        #expect(HealthRPC.check.path == "/grpc.Health/Check")
        #expect(Grpc_CreateContainerRequest.protoMessageName == "grpc.CreateContainerRequest")
        #expect(Grpc_Spec.protoMessageName == "grpc.Spec")
        #expect(Types_Interface.protoMessageName == "types.Interface")
    }

    @Test("every request and response type: text fixture → binary → back, equal, nothing unknown")
    func everyMessage() throws {
        var types: [any SwiftProtobuf.Message.Type] = Self.envelopes
        for method in Self.methods { types += [method.requestType, method.responseType] }
        var seen = Set<String>()
        for type in types where seen.insert(type.protoMessageName).inserted {
            try Self.roundTrip(type)
        }
        // No fixture goes unused (a typo in a name would leave one behind).
        #expect(seen == Set(MessageFixtures.all.keys))
    }

    static func roundTrip<M: SwiftProtobuf.Message>(_ type: M.Type) throws {
        let name = M.protoMessageName
        let text = try #require(MessageFixtures.all[name], "no fixture for \(name)")
        let message = try M(textFormatString: text)
        #expect(text.isEmpty || !message.isEqualTo(message: M()), "\(name): the fixture set nothing")
        let bytes: [UInt8] = try message.serializedBytes()
        let back = try M(serializedBytes: bytes)
        #expect(back.isEqualTo(message: message), "\(name): binary round trip differs")
        #expect(back.unknownFields.data.isEmpty, "\(name): fields unknown to the decoder")
        #expect(try M(textFormatString: back.textFormatString()).isEqualTo(message: message), "\(name): text round trip differs")
        // Decoding is deterministic too: the same bytes again.
        #expect(try back.serializedBytes() == bytes, "\(name): re-encoding changed the bytes")
    }

    @Test("wire bytes follow the field numbers and types")
    func wireBytes() throws {
        var create = Grpc_CreateContainerRequest()
        create.containerID = "a"
        create.oci.version = "1"
        create.stdinPort = 1
        // field 1 string, field 6 message (Spec.version = field 1), field 9 varint
        #expect(try create.serializedBytes() == [0x0A, 1, 0x61, 0x32, 3, 0x0A, 1, 0x31, 0x48, 1] as [UInt8])

        var request = Ttrpc_Request()
        request.service = "s"
        request.method = "m"
        request.payload = Data([1])
        request.timeoutNano = 5
        request.metadata = [.with { $0.key = "k"; $0.value = "v" }]
        #expect(try request.serializedBytes() == [0x0A, 1, 0x73, 0x12, 1, 0x6D, 0x1A, 1, 1, 0x20, 5, 0x2A, 6, 0x0A, 1, 0x6B, 0x12, 1, 0x76] as [UInt8])

        var response = Ttrpc_Response()
        response.status.code = 5
        response.status.message = "x"
        response.payload = Data([2])
        #expect(try response.serializedBytes() == [0x0A, 5, 0x08, 5, 0x12, 1, 0x78, 0x12, 1, 2] as [UInt8])

        var iface = Types_Interface()
        iface.ipAddresses = [.with { $0.family = .v6; $0.address = "::1"; $0.mask = "128" }]
        iface.mtu = 1500
        iface.hwAddr = "m"
        iface.rawFlags = 1
        #expect(try iface.serializedBytes() == [0x1A, 12, 0x08, 1, 0x12, 3, 0x3A, 0x3A, 0x31, 0x1A, 3, 0x31, 0x32, 0x38,
                                                0x20, 0xDC, 0x0B, 0x2A, 1, 0x6D, 0x40, 1] as [UInt8])

        // int32/int64 negatives are ten-byte varints; the seccomp errno is a oneof member.
        let negative: [UInt8] = [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]
        #expect(try Grpc_WaitProcessResponse.with { $0.status = -1 }.serializedBytes() == [0x08] + negative)
        #expect(try Grpc_SetGuestDateTimeRequest.with { $0.sec = 1; $0.usec = -1 }.serializedBytes() == [0x08, 1, 0x10] + negative)
        #expect(try Grpc_LinuxSyscall.with { $0.errnoret = 1 }.serializedBytes() == [0x18, 1] as [UInt8])
        var zeroErrno = Grpc_LinuxSyscall()
        zeroErrno.errnoret = 0
        #expect(try zeroErrno.serializedBytes() == [0x18, 0] as [UInt8], "a set oneof member goes out even when zero")

        // FSGroup has no field 1; Storage.fs_group is field 7.
        let storage = Grpc_Storage.with { $0.fsGroup.groupID = 1; $0.fsGroup.groupChangePolicy = .onRootMismatch }
        #expect(try storage.serializedBytes() == [0x3A, 4, 0x10, 1, 0x18, 1] as [UInt8])
    }

    @Test("fields a newer Kata sends that kvmrun does not know are kept, not lost or fatal")
    func unknownFieldsSurvive() throws {
        // StartContainerRequest with container_id and an extra field 15 (varint 7).
        let bytes: [UInt8] = [0x0A, 1, 0x61, 0x78, 7]
        let start = try Grpc_StartContainerRequest(serializedBytes: bytes)
        #expect(start.containerID == "a")
        #expect(try start.serializedBytes() == bytes)
    }
}
