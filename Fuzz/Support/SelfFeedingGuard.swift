import Memory

/// Where a queue lives in guest memory, as the driver programmed it.
public struct QueuePlacement {
    public var size: UInt16
    public var descriptors: UInt64
    public var available: UInt64
    public var used: UInt64

    public init(size: UInt16, descriptors: UInt64, available: UInt64, used: UInt64) {
        self.size = size
        self.descriptors = descriptors
        self.available = available
        self.used = used
    }
}

/// TEMPORARY harness guard, until the drain budget of branch feat/harden is on main: whether
/// the device's own writes (used rings, device-writable buffers) could land on an available
/// index or a descriptor table. Such a ring feeds itself: every used element the device writes
/// publishes another buffer, and `Queue.drain` never returns (the fuzzer found it at once: a
/// known issue, "drain budgets", fixed there). Targets skip the notify when this is true; once
/// the budget is merged, the guard goes and the fuzzers run those inputs too.
public func deviceCouldFeedItself(_ queues: [QueuePlacement], _ memory: GuestMemory) -> Bool {
    var protected: [Range<UInt64>] = []
    var written: [Range<UInt64>] = []
    for queue in queues {
        let size = UInt64(min(queue.size, 256))
        protected.append(span(queue.available &+ 2, 2))
        protected.append(span(queue.descriptors, 16 * size))
        written.append(span(queue.used, 6 + 8 * size))
        // One look at the whole table (a table outside RAM fails activation anyway).
        _ = try? memory.withBytes(at: GuestAddress(queue.descriptors), length: 16 * size) { table in
            for index in 0..<Int(size) {
                // SAFETY: entry `index` lies inside the checked 16 * size bytes of the table.
                let flags = table.loadUnaligned(fromByteOffset: 16 * index + 12, as: UInt16.self)
                guard flags & 2 != 0 else { continue }
                let address = table.loadUnaligned(fromByteOffset: 16 * index, as: UInt64.self)
                let length = table.loadUnaligned(fromByteOffset: 16 * index + 8, as: UInt32.self)
                written.append(span(address, UInt64(length)))
            }
        }
    }
    return written.contains { area in protected.contains { $0.overlaps(area) } }
}

/// `start..<start+length`, clipped at the top of the address space.
private func span(_ start: UInt64, _ length: UInt64) -> Range<UInt64> {
    let (end, overflow) = start.addingReportingOverflow(length)
    return start..<(overflow ? UInt64.max : end)
}
