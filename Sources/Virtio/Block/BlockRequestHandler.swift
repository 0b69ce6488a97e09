import Memory
import Synchronization
import Sys

/// How a request ended: its status byte, how many bytes went into the driver's buffers before
/// the status, and (for IOERR/UNSUPP) why, for the log.
struct BlockOutcome {
    let status: UInt8
    let written: Int
    let problem: String?

    static func ok(_ written: Int = 0) -> BlockOutcome { BlockOutcome(status: BlockSpec.Status.ok, written: written, problem: nil) }
    static func ioError(_ problem: String) -> BlockOutcome { BlockOutcome(status: BlockSpec.Status.ioError, written: 0, problem: problem) }
    static func unsupported(_ problem: String) -> BlockOutcome {
        BlockOutcome(status: BlockSpec.Status.unsupported, written: 0, problem: problem)
    }
}

/// Carries out one parsed request against the backing file. Nothing here throws: every failure,
/// the guest's or the host's, becomes a status.
struct BlockRequestHandler {
    let file: BlockFile
    let memory: GuestMemory
    let features: UInt64
    let serial: String
    let stats: BlockCounters

    func handle(_ request: BlockRequest) -> BlockOutcome {
        switch request.type {
        case BlockSpec.RequestType.read: return transfer(request, toFile: false)
        case BlockSpec.RequestType.write: return transfer(request, toFile: true)
        case BlockSpec.RequestType.flush: return flush()
        case BlockSpec.RequestType.getID: return getID(request)
        case BlockSpec.RequestType.discard: return rangeOperation(request, feature: BlockSpec.Feature.discard)
        case BlockSpec.RequestType.writeZeroes: return rangeOperation(request, feature: BlockSpec.Feature.writeZeroes)
        default: return .unsupported("request type \(request.type)")
        }
    }

    /// The byte offset of `sectors` sectors at `sector` when they lie inside the drive.
    func byteOffset(sector: UInt64, sectors: UInt64) -> UInt64? {
        let capacity = file.capacitySectors
        guard sector <= capacity, sectors <= capacity - sector else { return nil }
        return sector << BlockSpec.sectorShift
    }

    /// The byte offset of a `length`-byte transfer at `sector`, or why it is refused.
    private func dataOffset(_ request: BlockRequest, length: Int) -> Result<UInt64, BlockOutcomeError> {
        guard UInt64(length) % BlockSpec.sectorSize == 0 else {
            return .failure(.init("data length \(length) is not a multiple of \(BlockSpec.sectorSize)"))
        }
        guard let offset = byteOffset(sector: request.sector, sectors: UInt64(length) >> BlockSpec.sectorShift) else {
            return .failure(.init("sectors \(request.sector)+\(length >> 9) beyond the capacity of \(file.capacitySectors)"))
        }
        return .success(offset)
    }

    /// IN (file → the driver's writable buffers) and OUT (the driver's readable buffers → file).
    private func transfer(_ request: BlockRequest, toFile: Bool) -> BlockOutcome {
        let name = toFile ? "write" : "read"
        guard !(toFile && file.readOnly) else { return .ioError("write to a read-only drive") }
        let segments = toFile ? request.input : request.output
        let length = segments.reduce(0) { $0 + $1.length }
        let offset: UInt64
        switch dataOffset(request, length: length) {
        case let .failure(error): return .ioError("\(name): \(error.message)")
        case let .success(start): offset = start
        }
        do {
            if toFile {
                try file.write(from: memory, segments: segments, offset: offset)
            } else {
                try file.read(into: memory, segments: segments, offset: offset)
            }
        } catch {
            return .ioError("\(error)")
        }
        if toFile {
            stats.add(written: length)
            return .ok()
        }
        stats.add(read: length)
        return .ok(length)
    }

    private func flush() -> BlockOutcome {
        do {
            try file.flush()
        } catch {
            return .ioError("\(error)")
        }
        stats.flushes.wrappingAdd(1, ordering: .relaxed)
        return .ok()
    }

    /// The serial: the drive id, cut to 20 bytes, NUL-padded.
    private func getID(_ request: BlockRequest) -> BlockOutcome {
        var bytes = Array(serial.utf8.prefix(BlockSpec.idBytes))
        bytes += [UInt8](repeating: 0, count: BlockSpec.idBytes - bytes.count)
        var written = 0
        for segment in request.output where written < bytes.count {
            let count = min(segment.length, bytes.count - written)
            do {
                try memory.write(Array(bytes[written..<(written + count)]), at: segment.address)
            } catch {
                return .ioError("get-id: \(error)")
            }
            written += count
        }
        return .ok(written)
    }

    /// DISCARD and WRITE_ZEROES: a list of (sector u64, num_sectors u32, flags u32) segments.
    private func rangeOperation(_ request: BlockRequest, feature: UInt64) -> BlockOutcome {
        let zeroes = feature == BlockSpec.Feature.writeZeroes
        let name = zeroes ? "write-zeroes" : "discard"
        guard !file.readOnly else { return .ioError("\(name) on a read-only drive") }
        guard features & feature != 0 else { return .unsupported("\(name) was not negotiated") }
        let maxSegments = Int(zeroes ? BlockDevice.maxWriteZeroesSegments : BlockDevice.maxDiscardSegments)
        let length = request.inputLength
        guard length > 0, length % BlockSpec.discardSegmentSize == 0, length / BlockSpec.discardSegmentSize <= maxSegments else {
            return .ioError("\(name): \(length) bytes of segments (16 each, at most \(maxSegments))")
        }
        var bytes: [UInt8] = []
        for segment in request.input {
            do {
                bytes += try memory.read(count: segment.length, at: segment.address)
            } catch {
                return .ioError("\(name): \(error)")
            }
        }
        for start in stride(from: 0, to: bytes.count, by: BlockSpec.discardSegmentSize) {
            let sector = littleEndian(bytes, start, as: UInt64.self)
            let count = littleEndian(bytes, start + 8, as: UInt32.self)
            let flags = littleEndian(bytes, start + 12, as: UInt32.self)
            let allowedFlags = zeroes ? BlockSpec.segmentFlagUnmap : 0
            guard flags & ~allowedFlags == 0 else { return .unsupported("\(name) flags 0x\(String(flags, radix: 16))") }
            let limit = zeroes ? BlockDevice.maxWriteZeroesSectors : BlockDevice.maxDiscardSectors
            guard count <= limit, let offset = byteOffset(sector: sector, sectors: UInt64(count)) else {
                return .ioError("\(name): sectors \(sector)+\(count) beyond the capacity of \(file.capacitySectors) or the limit of \(limit)")
            }
            let bytesLength = UInt64(count) << BlockSpec.sectorShift
            do {
                if zeroes && !(flags & BlockSpec.segmentFlagUnmap != 0 && file.canPunchHoles) {
                    try file.writeZeros(offset: offset, length: bytesLength)
                } else if bytesLength > 0 {
                    try file.punchHole(offset: offset, length: bytesLength)
                }
            } catch {
                return .ioError("\(error)")
            }
        }
        if zeroes { stats.writeZeroes.wrappingAdd(1, ordering: .relaxed) } else { stats.discards.wrappingAdd(1, ordering: .relaxed) }
        return .ok()
    }
}

struct BlockOutcomeError: Error {
    let message: String
    init(_ message: String) { self.message = message }
}

/// Request counters for the control API (read from any thread), free-running: they wrap.
final class BlockCounters: Sendable {
    let reads = Atomic<UInt64>(0)
    let writes = Atomic<UInt64>(0)
    let readBytes = Atomic<UInt64>(0)
    let writeBytes = Atomic<UInt64>(0)
    let flushes = Atomic<UInt64>(0)
    let discards = Atomic<UInt64>(0)
    let writeZeroes = Atomic<UInt64>(0)
    let errors = Atomic<UInt64>(0)
    let unsupported = Atomic<UInt64>(0)
    /// Problems logged so far; a misbehaving guest is logged a few times, not flooded.
    private let logged = Atomic<UInt64>(0)
    static let logLimit: UInt64 = 16

    func add(read bytes: Int) {
        reads.wrappingAdd(1, ordering: .relaxed)
        readBytes.wrappingAdd(UInt64(bytes), ordering: .relaxed)
    }

    func add(written bytes: Int) {
        writes.wrappingAdd(1, ordering: .relaxed)
        writeBytes.wrappingAdd(UInt64(bytes), ordering: .relaxed)
    }

    func record(_ status: UInt8) {
        switch status {
        case BlockSpec.Status.ioError: errors.wrappingAdd(1, ordering: .relaxed)
        case BlockSpec.Status.unsupported: unsupported.wrappingAdd(1, ordering: .relaxed)
        default: break
        }
    }

    func shouldLog() -> Bool { logged.wrappingAdd(1, ordering: .relaxed).newValue <= BlockCounters.logLimit }

    var snapshot: [String: UInt64] {
        ["reads": reads.load(ordering: .relaxed), "writes": writes.load(ordering: .relaxed),
         "read_bytes": readBytes.load(ordering: .relaxed), "write_bytes": writeBytes.load(ordering: .relaxed),
         "flushes": flushes.load(ordering: .relaxed), "discards": discards.load(ordering: .relaxed),
         "write_zeroes": writeZeroes.load(ordering: .relaxed), "errors": errors.load(ordering: .relaxed),
         "unsupported": unsupported.load(ordering: .relaxed)]
    }
}
