/// Named event counters for the control API's metrics (`GET /metrics`). The values are
/// free-running u64s that wrap, as the kernel's interface counters do: a guest that drives one
/// past 2^64 (virtio-mem's discarded bytes grow by up to the region size per request) wraps it
/// instead of trapping the VMM.
public struct CounterSet: Equatable, Sendable {
    public private(set) var values: [String: UInt64] = [:]

    public init() {}

    public mutating func add(_ name: String, _ amount: UInt64 = 1) {
        values[name, default: 0] &+= amount
    }

    public subscript(name: String) -> UInt64 { values[name, default: 0] }
}
