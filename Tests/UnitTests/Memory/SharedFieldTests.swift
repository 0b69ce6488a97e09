#if canImport(Glibc)
import Glibc
#endif
import Memory
import Synchronization
import Testing

/// Ring indexes are 16-bit fields the guest rewrites while the device reads them (virtio 1.x,
/// 2.7: avail->idx, used_event). A read must return one of the values written, never the high
/// byte of one and the low byte of the other: reading avail->idx as 0x13FF while the driver
/// moved it from 0x12FF to 0x1300 once made virtio-net report "driver published 260 buffers in a
/// queue of 256" under a Linux guest (a copy of two bytes may take them one at a time).
@Suite("Guest memory fields shared with the guest")
struct SharedFieldTests {
    @Test("a 16-bit index another thread moves from 0x12FF to 0x1300 and back reads whole, every time")
    func indexReadsWhole() throws {
        let memory = try GuestMemory(layout: [(GuestAddress(0), 1 << 20)])
        let address = GuestAddress(0x1002)
        let region = try #require(memory.region(containing: address, length: 2))
        // SAFETY: address + 2 lies inside `region` (checked above), mapped while `memory` lives.
        let host = UnsafeMutableRawPointer(bitPattern: region.hostAddress)!
            .advanced(by: Int(address.raw - region.guestBase.raw))
        host.storeBytes(of: UInt16(0x12FF), as: UInt16.self)
        let field = UInt(bitPattern: host)
        let stop = Atomic<Bool>(false)
        // The "driver": one 16-bit store at a time, as a guest's `mov` is.
        let driver = TestThread {
            // SAFETY: `field` is the 2-byte-aligned host address of the guest word above.
            let pointer = UnsafeMutablePointer<UInt16>(bitPattern: field)!
            while !stop.load(ordering: .relaxed) {
                pointer.pointee = 0x1300
                pointer.pointee = 0x12FF
            }
        }
        var mixed: [UInt16] = []
        var reads = 0
        while reads < 10_000_000 && mixed.count < 5 {
            let value = try memory.load(UInt16.self, at: address)
            if value != 0x12FF && value != 0x1300 { mixed.append(value) }
            reads += 1
        }
        stop.store(true, ordering: .relaxed)
        driver.join()
        #expect(mixed.isEmpty, "\(mixed.count) mixed values in \(reads) reads: \(mixed.map { "0x" + String($0, radix: 16) })")
    }
}
