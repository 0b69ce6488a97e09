#if canImport(Glibc)
import Glibc
#endif
import Memory
import Sys
import Testing
@testable import Virtio
import VirtioTesting

/// A virtio-blk device over a real temporary image file, driven by the driver test double.
final class BlockRig {
    typealias T = BlockSpec.RequestType
    static let sectors = 64
    let path: String
    let driver: DriverDouble
    let device: BlockDevice
    let transport: MMIOTransport
    /// The image's original contents: byte i is (i * 7 + i / 512) & 0xFF.
    let original: [UInt8]

    init(_ name: String, readOnly: Bool = false, id: String = "test-disk", sectors: Int = BlockRig.sectors) throws {
        path = BlockRig.temporaryPath(name)
        original = (0..<(sectors * 512)).map { UInt8(truncatingIfNeeded: $0 * 7 + $0 / 512) }
        BlockRig.writeFile(path, original)
        device = try BlockDevice(path: path, readOnly: readOnly, id: id)
        driver = try DriverDouble()
        transport = driver.attach(device)
        driver.initialize()
    }

    deinit { unlink(path) }

    static func temporaryPath(_ name: String) -> String { "/tmp/kvmrun-unit-\(getpid())-\(name)" }

    static func writeFile(_ path: String, _ bytes: [UInt8]) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        // SAFETY: writes the local array.
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
    }

    var fileBytes: [UInt8] {
        let fd = open(path, O_RDONLY)
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: Int(lseek(fd, 0, SEEK_END)))
        // SAFETY: reads into the local array of the file's size.
        _ = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        return bytes
    }

    func header(_ type: UInt32, sector: UInt64) -> [UInt8] {
        withUnsafeBytes(of: type.littleEndian) { Array($0) } + [0, 0, 0, 0] + withUnsafeBytes(of: sector.littleEndian) { Array($0) }
    }

    struct Reply {
        let status: UInt8
        let usedLength: UInt32?
        let data: [UInt8]
    }

    /// Sends header + `input` (device-readable) + `outputLength` writable bytes + status byte,
    /// each in its own descriptor, and returns the status, used length and output bytes.
    func request(_ type: UInt32, sector: UInt64 = 0, input: [UInt8] = [], outputLength: Int = 0) throws -> Reply {
        var buffers: [DriverDouble.Buffer] = []
        let head = header(type, sector: sector)
        buffers.append(.init(address: try driver.allocate(head.count, bytes: head), length: UInt32(head.count), writable: false))
        if !input.isEmpty {
            buffers.append(.init(address: try driver.allocate(input.count, bytes: input), length: UInt32(input.count), writable: false))
        }
        var output: GuestAddress?
        if outputLength > 0 {
            let address = try driver.allocate(outputLength, bytes: [UInt8](repeating: 0xEE, count: outputLength))
            output = address
            buffers.append(.init(address: address, length: UInt32(outputLength), writable: true))
        }
        let status = try driver.allocate(1, bytes: [0xFF])
        buffers.append(.init(address: status, length: 1, writable: true))
        return try send(buffers, status: status, output: output, outputLength: outputLength)
    }

    /// Allocates one descriptor buffer per entry, filled with its bytes.
    func buffers(_ specs: [(bytes: [UInt8], writable: Bool)]) throws -> [DriverDouble.Buffer] {
        try specs.map { spec in
            .init(address: try driver.allocate(spec.bytes.count, bytes: spec.bytes), length: UInt32(spec.bytes.count),
                  writable: spec.writable)
        }
    }

    func send(_ buffers: [DriverDouble.Buffer], status: GuestAddress, output: GuestAddress? = nil,
              outputLength: Int = 0) throws -> Reply {
        try driver.publish(buffers, queue: 0)
        let used = try driver.takeUsed(queue: 0)
        let data = try output.map { try driver.memory.read(count: outputLength, at: $0) } ?? []
        return Reply(status: try driver.memory.load(UInt8.self, at: status), usedLength: used.first?.length, data: data)
    }

    func discardSegment(sector: UInt64, count: UInt32, flags: UInt32 = 0) -> [UInt8] {
        withUnsafeBytes(of: sector.littleEndian) { Array($0) } + withUnsafeBytes(of: count.littleEndian) { Array($0) }
            + withUnsafeBytes(of: flags.littleEndian) { Array($0) }
    }
}

@Suite("virtio-blk device")
struct BlockTests {
    typealias T = BlockSpec.RequestType
    typealias S = BlockSpec.Status

    @Test("config space: capacity in sectors, blk_size, seg_max; features offered")
    func configSpace() throws {
        let rig = try BlockRig("config")
        let config = rig.driver.readConfig(offset: 0, count: BlockSpec.ConfigOffset.size)
        #expect(littleEndianValue(config, 0, UInt64.self) == UInt64(BlockRig.sectors))
        #expect(littleEndianValue(config, BlockSpec.ConfigOffset.blockSize, UInt32.self) == 512)
        #expect(littleEndianValue(config, BlockSpec.ConfigOffset.segMax, UInt32.self) == BlockDevice.segmentMax)
        // A request of seg_max segments plus its header and status must fit the ring, or a
        // driver without indirect descriptors could never submit it.
        #expect(BlockDevice.segmentMax + 2 <= UInt32(BlockDevice.queueSize))
        let features = rig.driver.deviceFeatures
        #expect(features & BlockSpec.Feature.flush != 0)
        #expect(features & BlockSpec.Feature.readOnly == 0)
        #expect(features & BlockSpec.Feature.writeZeroes != 0)
        #expect(rig.driver.readRegister(MMIOTransport.Register.deviceID) == VirtioDeviceType.block.rawValue)
        #expect(!rig.driver.needsReset)
    }

    @Test("IN reads the image's bytes at the sector into the driver's buffer")
    func read() throws {
        let rig = try BlockRig("read")
        let reply = try rig.request(T.read, sector: 3, outputLength: 1024)
        #expect(reply.status == S.ok)
        #expect(reply.data == Array(rig.original[(3 * 512)..<(5 * 512)]))
        #expect(reply.usedLength == 1025)
        #expect(rig.device.counters["reads"] == 1 && rig.device.counters["read_bytes"] == 1024)
        #expect(rig.driver.line.count >= 1, "the driver is interrupted for the used buffer")
    }

    @Test("OUT writes the driver's bytes into the file at the sector, nothing else changes")
    func write() throws {
        let rig = try BlockRig("write")
        let pattern = (0..<1536).map { UInt8(truncatingIfNeeded: 255 - $0) }
        let reply = try rig.request(T.write, sector: 10, input: pattern)
        #expect(reply.status == S.ok && reply.usedLength == 1)
        var expected = rig.original
        expected.replaceSubrange((10 * 512)..<(13 * 512), with: pattern)
        #expect(rig.fileBytes == expected)
        #expect(rig.device.counters["writes"] == 1 && rig.device.counters["write_bytes"] == 1536)
    }

    @Test("requests queued together are all served with one notify, in order on the used ring, each with its status")
    func queuedTogether() throws {
        let rig = try BlockRig("together")
        // Four writes of distinct sectors and a read of a sector none of them touches, one
        // notify (15 descriptors: the double's queue holds 16).
        var heads: [UInt16] = [], statuses: [GuestAddress] = []
        var expected = rig.original
        for index in 0..<4 {
            let pattern = [UInt8](repeating: UInt8(0x10 + index), count: 512)
            expected.replaceSubrange((index * 2 * 512)..<((index * 2 + 1) * 512), with: pattern)
            let status = try rig.driver.allocate(1, bytes: [0xFF])
            statuses.append(status)
            heads.append(try rig.driver.publish(try rig.buffers([(rig.header(T.write, sector: UInt64(index * 2)), false), (pattern, false)])
                + [.init(address: status, length: 1, writable: true)], queue: 0, notify: false))
        }
        let output = try rig.driver.allocate(512, bytes: [UInt8](repeating: 0xEE, count: 512))
        let readStatus = try rig.driver.allocate(1, bytes: [0xFF])
        heads.append(try rig.driver.publish(try rig.buffers([(rig.header(T.read, sector: 20), false)])
            + [.init(address: output, length: 512, writable: true), .init(address: readStatus, length: 1, writable: true)], queue: 0, notify: false))
        rig.transport.notify(queue: 0)
        let used = try rig.driver.takeUsed(queue: 0)
        #expect(used.map(\.head) == heads)
        #expect(used.map(\.length) == [1, 1, 1, 1, 513])
        let answers = try (statuses + [readStatus]).map { try rig.driver.memory.load(UInt8.self, at: $0) }
        #expect(answers == [UInt8](repeating: S.ok, count: 5), "statuses \(answers), log \(rig.driver.log)")
        #expect(try rig.driver.memory.read(count: 512, at: output) == Array(rig.original[(20 * 512)..<(21 * 512)]))
        let firstDifference = zip(rig.fileBytes, expected).enumerated().first { $0.1.0 != $0.1.1 }?.offset
        #expect(firstDifference == nil, "the file differs from what was written at byte \(firstDifference ?? -1)")
    }

    @Test("FLUSH syncs and answers OK; GET_ID returns the drive id NUL-padded to 20 bytes")
    func flushAndID() throws {
        let rig = try BlockRig("flush", id: "rootfs-1")
        #expect(try rig.request(T.flush).status == S.ok)
        #expect(rig.device.counters["flushes"] == 1)
        let reply = try rig.request(T.getID, outputLength: 20)
        #expect(reply.status == S.ok)
        #expect(reply.data == Array("rootfs-1".utf8) + [UInt8](repeating: 0, count: 12))
        #expect(reply.usedLength == 21)
    }

    @Test("a read-only drive offers RO and answers writes and discards with IOERR, file unchanged")
    func readOnly() throws {
        let rig = try BlockRig("readonly", readOnly: true)
        #expect(rig.driver.deviceFeatures & BlockSpec.Feature.readOnly != 0)
        #expect(rig.driver.deviceFeatures & BlockSpec.Feature.discard == 0)
        #expect(try rig.request(T.write, sector: 0, input: [UInt8](repeating: 1, count: 512)).status == S.ioError)
        #expect(try rig.request(T.discard, input: rig.discardSegment(sector: 0, count: 8)).status == S.ioError)
        #expect(try rig.request(T.read, sector: 0, outputLength: 512).status == S.ok, "reads still work")
        #expect(rig.fileBytes == rig.original)
        #expect(rig.device.counters["errors"] == 2)
        #expect(!rig.driver.needsReset)
    }

    @Test("sectors beyond the capacity are IOERR, including overflowing sector numbers",
          arguments: [(UInt64(63), 1024), (UInt64(64), 512), (UInt64.max, 512), (UInt64.max >> 9, 512), (UInt64(0), 65 * 512)])
    func outOfRange(sector: UInt64, length: Int) throws {
        let rig = try BlockRig("range-\(sector % 1000)-\(length)")
        #expect(try rig.request(T.read, sector: sector, outputLength: length).status == S.ioError)
        #expect(try rig.request(T.write, sector: sector, input: [UInt8](repeating: 9, count: length)).status == S.ioError)
        #expect(rig.fileBytes == rig.original)
        #expect(!rig.driver.needsReset)
    }

    @Test("the last sector is reachable; a length that is not whole sectors is IOERR")
    func edges() throws {
        let rig = try BlockRig("edges")
        let last = try rig.request(T.read, sector: UInt64(BlockRig.sectors - 1), outputLength: 512)
        #expect(last.status == S.ok && last.data == Array(rig.original.suffix(512)))
        #expect(try rig.request(T.read, sector: 0, outputLength: 100).status == S.ioError)
        #expect(try rig.request(T.write, sector: 0, input: [1, 2, 3]).status == S.ioError)
        #expect(rig.fileBytes == rig.original)
    }

    @Test("unknown request types are UNSUPP; the device keeps working")
    func unsupported() throws {
        let rig = try BlockRig("unsupp")
        #expect(try rig.request(99).status == S.unsupported)
        #expect(try rig.request(T.read, outputLength: 512).status == S.ok)
        #expect(rig.device.counters["unsupported"] == 1)
    }

    @Test("a short header gets IOERR in the status byte")
    func shortHeader() throws {
        let rig = try BlockRig("short")
        let chain = try rig.buffers([([UInt8](repeating: 0, count: 8), false), ([0xFF], true)])
        let reply = try rig.send(chain, status: chain[1].address)
        #expect(reply.status == S.ioError && reply.usedLength == 1)
        #expect(!rig.driver.needsReset)
    }

    @Test("a chain with no device-writable byte (no status) is a protocol error: NEEDS_RESET, logged")
    func noStatus() throws {
        let rig = try BlockRig("nostatus")
        let chain = try rig.buffers([(rig.header(T.read, sector: 0), false), ([UInt8](repeating: 0, count: 512), false)])
        try rig.driver.publish(chain, queue: 0)
        #expect(rig.driver.needsReset)
        #expect(rig.driver.log.last?.contains("status") == true)
        #expect(rig.fileBytes == rig.original)
        // A driver reset brings the device back.
        #expect(rig.driver.initialize() & MMIOTransport.Status.driverOK != 0)
        #expect(!rig.driver.needsReset)
        #expect(try rig.request(T.read, sector: 1, outputLength: 512).data == Array(rig.original[512..<1024]))
    }

    @Test("a 2-byte status buffer on a read: the extra byte counts as data, so the request is IOERR")
    func wideStatus() throws {
        let rig = try BlockRig("widestatus")
        let chain = try rig.buffers([(rig.header(T.read, sector: 0), false), ([UInt8](repeating: 0, count: 512), true),
                                     ([0xFF, 0xFF], true)])
        let reply = try rig.send(chain, status: chain[2].address + 1)
        #expect(reply.status == S.ioError)
        #expect(!rig.driver.needsReset)
    }

    @Test("framing does not matter: header split over two descriptors, data and status in one")
    func framing() throws {
        let rig = try BlockRig("framing")
        let head = rig.header(T.read, sector: 5)
        let chain = try rig.buffers([(Array(head[0..<8]), false), (Array(head[8..<16]), false),
                                     ([UInt8](repeating: 0xEE, count: 513), true)])
        let combined = chain[2].address
        let reply = try rig.send(chain, status: combined + 512, output: combined, outputLength: 512)
        #expect(reply.status == S.ok)
        #expect(reply.data == Array(rig.original[(5 * 512)..<(6 * 512)]))
    }

    @Test("data spread over several descriptors is read and written in order")
    func scatterGather() throws {
        let rig = try BlockRig("scatter")
        let sizes = [512, 1536, 1024]
        let read = try rig.buffers([(rig.header(T.read, sector: 7), false)] + sizes.map { ([UInt8](repeating: 0xEE, count: $0), true) }
            + [([0xFF], true)])
        let reply = try rig.send(read, status: read[4].address)
        #expect(reply.status == S.ok && reply.usedLength == 3073)
        let got = try (1...3).flatMap { try rig.driver.memory.read(count: Int(read[$0].length), at: read[$0].address) }
        #expect(got == Array(rig.original[(7 * 512)..<(13 * 512)]))

        let pattern = (0..<3072).map { UInt8(truncatingIfNeeded: $0 / 3) }
        var pieces: [(bytes: [UInt8], writable: Bool)] = [(rig.header(T.write, sector: 20), false)]
        var start = 0
        for size in sizes {
            pieces.append((Array(pattern[start..<(start + size)]), false))
            start += size
        }
        let write = try rig.buffers(pieces + [([0xFF], true)])
        #expect(try rig.send(write, status: write[4].address).status == S.ok)
        var expected = rig.original
        expected.replaceSubrange((20 * 512)..<(26 * 512), with: pattern)
        #expect(rig.fileBytes == expected)
    }

    @Test("short transfers continue where they stopped, across and inside iovecs")
    func shortTransfers() throws {
        let source = (0..<5000).map { UInt8(truncatingIfNeeded: $0 &* 13) }
        var first = [UInt8](repeating: 0, count: 1000), second = [UInt8](repeating: 0, count: 3000)
        var third = [UInt8](repeating: 0, count: 1000)
        var calls = 0
        let result: Result<Void, SystemError> = first.withUnsafeMutableBytes { a in
            second.withUnsafeMutableBytes { b in
                third.withUnsafeMutableBytes { c in
                    var vectors = [a, b, c].map { iovec(iov_base: $0.baseAddress, iov_len: $0.count) }
                    // A fake preadv that moves at most 700 bytes per call, from `source` at `position`.
                    return BlockFile.transferAll(0, &vectors, total: 5000, offset: 0, call: "fake") { _, iov, count, position in
                        calls += 1
                        var moved = 0
                        for index in 0..<Int(count) where moved < 700 {
                            let take = min(iov[index].iov_len, 700 - moved)
                            for byte in 0..<take {
                                iov[index].iov_base!.storeBytes(of: source[Int(position) + moved + byte], toByteOffset: byte, as: UInt8.self)
                            }
                            moved += take
                        }
                        return moved
                    }
                }
            }
        }
        #expect((try? result.get()) != nil)
        #expect(first + second + third == source)
        #expect(calls == 8)
    }

    @Test("a file that shrank under the drive: reads past its new end are IOERR, not a crash")
    func shrunkFile() throws {
        let rig = try BlockRig("shrunk")
        #expect(truncate(rig.path, 10 * 512) == 0)
        #expect(try rig.request(T.read, sector: 9, outputLength: 1024).status == S.ioError, "straddles the new end")
        #expect(try rig.request(T.read, sector: 20, outputLength: 512).status == S.ioError)
        #expect(try rig.request(T.read, sector: 8, outputLength: 1024).status == S.ok)
        #expect(!rig.driver.needsReset)
    }

    @Test("DISCARD is offered only when the file can punch holes, and then reads back zeros")
    func discard() throws {
        let rig = try BlockRig("discard")
        let offered = rig.driver.deviceFeatures & BlockSpec.Feature.discard != 0
        let reply = try rig.request(T.discard, input: rig.discardSegment(sector: 8, count: 16))
        if offered {
            #expect(reply.status == S.ok)
            var expected = rig.original
            expected.replaceSubrange((8 * 512)..<(24 * 512), with: [UInt8](repeating: 0, count: 16 * 512))
            #expect(rig.fileBytes == expected)
            let config = rig.driver.readConfig(offset: 0, count: BlockSpec.ConfigOffset.size)
            #expect(littleEndianValue(config, BlockSpec.ConfigOffset.maxDiscardSectors, UInt32.self) == BlockDevice.maxDiscardSectors)
        } else {
            #expect(reply.status == S.unsupported)
            #expect(rig.fileBytes == rig.original)
        }
        #expect(try rig.request(T.discard, input: rig.discardSegment(sector: 60, count: 8)).status
            == (offered ? S.ioError : S.unsupported), "beyond the end")
        #expect(try rig.request(T.discard, input: [1, 2, 3]).status == (offered ? S.ioError : S.unsupported))
    }

    @Test("WRITE_ZEROES zeroes the range, with or without the unmap flag")
    func writeZeroes() throws {
        let rig = try BlockRig("zeroes")
        #expect(try rig.request(T.writeZeroes, input: rig.discardSegment(sector: 1, count: 2)).status == S.ok)
        #expect(try rig.request(T.writeZeroes, input: rig.discardSegment(sector: 40, count: 8, flags: 1)).status == S.ok)
        #expect(try rig.request(T.writeZeroes, input: rig.discardSegment(sector: 0, count: 1, flags: 2)).status == S.unsupported)
        var expected = rig.original
        expected.replaceSubrange(512..<(3 * 512), with: [UInt8](repeating: 0, count: 1024))
        expected.replaceSubrange((40 * 512)..<(48 * 512), with: [UInt8](repeating: 0, count: 8 * 512))
        #expect(rig.fileBytes == expected)
        #expect(rig.fileBytes.count == rig.original.count)
    }

    @Test("a new backing file: new capacity in the config, config generation bumped, interrupt raised")
    func replaceBackingFile() throws {
        let rig = try BlockRig("replace-old")
        let newPath = BlockRig.temporaryPath("replace-new")
        let newBytes = [UInt8](repeating: 0x5A, count: 128 * 512)
        BlockRig.writeFile(newPath, newBytes)
        defer { unlink(newPath) }
        let generation = rig.driver.readRegister(MMIOTransport.Register.configGeneration)
        let interrupts = rig.driver.line.count
        #expect(try rig.device.replaceBackingFile(path: newPath) == 128)
        rig.transport.configChanged()
        #expect(littleEndianValue(rig.driver.readConfig(offset: 0, count: 8), 0, UInt64.self) == 128)
        #expect(rig.driver.readRegister(MMIOTransport.Register.configGeneration) != generation)
        #expect(rig.driver.line.count > interrupts)
        let reply = try rig.request(T.read, sector: 100, outputLength: 512)
        #expect(reply.status == S.ok && reply.data == [UInt8](repeating: 0x5A, count: 512))
        #expect(rig.device.path == newPath)
    }

    @Test("a backing file that cannot be opened leaves the old one in place, and the error names the path")
    func replaceFails() throws {
        let rig = try BlockRig("replace-fail")
        #expect {
            try rig.device.replaceBackingFile(path: "/nonexistent/kvmrun.img")
        } throws: { error in
            "\(error)".contains("/nonexistent/kvmrun.img")
        }
        #expect(rig.device.capacitySectors == UInt64(BlockRig.sectors))
        let reply = try rig.request(T.read, sector: 0, outputLength: 512)
        #expect(reply.data == Array(rig.original[0..<512]))
    }

    @Test("opening a missing image fails with the path in the error")
    func missingImage() throws {
        #expect {
            _ = try BlockDevice(path: "/nonexistent/disk.img", id: "d")
        } throws: { error in
            "\(error)".contains("/nonexistent/disk.img") && "\(error)".contains("ENOENT")
        }
    }
}

func littleEndianValue<V: FixedWidthInteger>(_ bytes: [UInt8], _ offset: Int, _ type: V.Type) -> V {
    var value: V = 0
    for index in 0..<(V.bitWidth / 8) { value |= V(bytes[offset + index]) << (8 * index) }
    return value
}
