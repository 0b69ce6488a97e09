/// Which blocks of a virtio-mem region are plugged: one bit per block.
public struct PlugBitmap: Equatable, Sendable {
    public let blockCount: Int
    public private(set) var pluggedCount = 0
    private var words: [UInt64]

    public init(blockCount: Int) {
        self.blockCount = blockCount
        words = [UInt64](repeating: 0, count: (blockCount + 63) / 64)
    }

    public func isPlugged(_ block: Int) -> Bool {
        words[block / 64] & (1 << UInt64(block % 64)) != 0
    }

    /// State of `blocks` (a non-empty range inside the bitmap).
    public func state(of blocks: Range<Int>) -> MemBlockState {
        let plugged = blocks.reduce(0) { $0 + (isPlugged($1) ? 1 : 0) }
        if plugged == blocks.count { return .plugged }
        return plugged == 0 ? .unplugged : .mixed
    }

    public mutating func set(_ blocks: Range<Int>, plugged: Bool) {
        for block in blocks where isPlugged(block) != plugged {
            words[block / 64] ^= 1 << UInt64(block % 64)
            pluggedCount += plugged ? 1 : -1
        }
    }

    /// Calls `body` with each maximal run of plugged blocks, in order, until it returns false.
    public func forEachPluggedRun(_ body: (Range<Int>) -> Bool) {
        var block = 0
        while block < blockCount {
            let word = words[block / 64] >> UInt64(block % 64)
            if word == 0 {
                block += 64 - block % 64  // the rest of this word is unplugged
                continue
            }
            guard word & 1 != 0 else {
                block += word.trailingZeroBitCount
                continue
            }
            var end = block
            while end < blockCount && isPlugged(end) { end += 1 }
            guard body(block..<end) else { return }
            block = end
        }
    }

    public mutating func clear() {
        for index in words.indices { words[index] = 0 }
        pluggedCount = 0
    }
}
