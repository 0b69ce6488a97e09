import Memory
import Testing

/// `GuestMemory.withBytes(ofRanges:)`: the scatter-list view virtio-blk builds its iovecs from.
@Suite("Guest memory views of several ranges at once")
struct RangeViewTests {
    @Test("the views are the ranges' bytes, in the order given, across two regions")
    func viewsInOrder() throws {
        let memory = try GuestMemory(layout: [(GuestAddress(0), 1 << 20), (GuestAddress(1 << 32), 1 << 20)])
        try memory.write([1, 2, 3], at: GuestAddress(0x2000))
        try memory.write([7, 8], at: GuestAddress((1 << 32) + 0x10))
        let seen = try memory.withBytes(ofRanges: [(GuestAddress((1 << 32) + 0x10), 2), (GuestAddress(0x2000), 3)]) { views in
            views.map { Array($0) }
        }
        #expect(seen == [[7, 8], [1, 2, 3]])
        // Writes through a view land in guest memory.
        try memory.withBytes(ofRanges: [(GuestAddress(0x3000), 1)]) { views in views[0][0] = 0xAB }
        #expect(try memory.load(UInt8.self, at: GuestAddress(0x3000)) == 0xAB)
    }

    @Test("a range outside guest RAM, or straddling the end of a region, throws naming it and runs nothing")
    func outsideRangeThrows() throws {
        let memory = try GuestMemory(layout: [(GuestAddress(0), 1 << 20)])
        for bad in [(GuestAddress(1 << 20), UInt64(1)), (GuestAddress((1 << 20) - 4), UInt64(8)), (GuestAddress(UInt64.max - 1), UInt64(4))] {
            var ran = false
            #expect(throws: MemoryError.outOfRange(bad.0, length: bad.1)) {
                try memory.withBytes(ofRanges: [(GuestAddress(0), 16), bad]) { _ in ran = true }
            }
            #expect(!ran)
        }
    }
}
