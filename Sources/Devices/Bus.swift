/// A device reachable through port I/O or MMIO. Offsets are relative to the device's base.
/// Calls come from vCPU threads concurrently: devices guard their own state.
public protocol BusDevice: AnyObject, Sendable {
    /// Fills `data` (1 to 8 bytes) with what a guest load at `offset` reads.
    func read(offset: UInt64, data: UnsafeMutableRawBufferPointer)
    /// Handles a guest store of `data` at `offset`.
    func write(offset: UInt64, data: UnsafeRawBufferPointer)
}

public enum BusError: Error, CustomStringConvertible, Equatable {
    case overlap(base: UInt64, length: UInt64, existing: String)
    case emptyRange(base: UInt64)

    public var description: String {
        switch self {
        case let .overlap(base, length, existing):
            return "device range 0x\(String(base, radix: 16))+0x\(String(length, radix: 16)) overlaps \(existing)"
        case let .emptyRange(base):
            return "device range at 0x\(String(base, radix: 16)) is empty"
        }
    }
}

/// An address space (the I/O ports, or MMIO) mapping ranges to devices. Built before the vCPUs
/// start and read-only afterwards, so lookups need no lock.
public final class Bus: @unchecked Sendable {
    struct Entry {
        let base: UInt64
        let length: UInt64
        let name: String
        let device: any BusDevice
    }

    private var entries: [Entry] = []

    public init() {}

    /// Adds `device` at [base, base+length). Ranges may not overlap.
    public func insert(_ device: any BusDevice, name: String, base: UInt64, length: UInt64) throws(BusError) {
        guard length > 0 else { throw .emptyRange(base: base) }
        for entry in entries where base < entry.base + entry.length && entry.base < base + length {
            throw .overlap(base: base, length: length, existing: entry.name)
        }
        entries.append(Entry(base: base, length: length, name: name, device: device))
        entries.sort { $0.base < $1.base }
    }

    /// The device whose range holds `address`, with the offset into it.
    public func lookup(_ address: UInt64) -> (device: any BusDevice, offset: UInt64)? {
        var low = 0, high = entries.count
        while low < high {
            let middle = (low + high) / 2
            let entry = entries[middle]
            if address < entry.base {
                high = middle
            } else if address - entry.base >= entry.length {
                low = middle + 1
            } else {
                return (entry.device, address - entry.base)
            }
        }
        return nil
    }

    /// Dispatches a load. Returns false (and leaves `data` as zeros) when nothing is mapped.
    @discardableResult
    public func read(_ address: UInt64, data: UnsafeMutableRawBufferPointer) -> Bool {
        guard let (device, offset) = lookup(address) else {
            if data.count > 0 { data.initializeMemory(as: UInt8.self, repeating: 0) }
            return false
        }
        device.read(offset: offset, data: data)
        return true
    }

    /// Dispatches a store. Returns false when nothing is mapped.
    @discardableResult
    public func write(_ address: UInt64, data: UnsafeRawBufferPointer) -> Bool {
        guard let (device, offset) = lookup(address) else { return false }
        device.write(offset: offset, data: data)
        return true
    }
}
