#if canImport(Glibc)
import Glibc
#endif
import Sys

/// Errors of the memory layer. Each names the guest range involved.
public enum MemoryError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The range is not inside one region of guest RAM.
    case outOfRange(GuestAddress, length: UInt64)
    /// Regions given to `GuestMemory` overlap, are empty or not page-aligned.
    case badLayout(String)
    /// mmap of a region failed.
    case mapFailed(GuestAddress, size: UInt64, SystemError)
    /// madvise or mincore on a range failed.
    case adviceFailed(GuestAddress, length: UInt64, SystemError)

    public var description: String {
        switch self {
        case let .outOfRange(address, length):
            return "guest memory access \(address)..+\(length) is outside guest RAM"
        case let .badLayout(reason):
            return "guest memory layout: \(reason)"
        case let .mapFailed(address, size, error):
            return "mapping guest RAM at \(address) (\(size >> 20) MiB): \(error)"
        case let .adviceFailed(address, length, error):
            return "guest memory \(address)..+\(length): \(error)"
        }
    }
}

/// One contiguous range of guest RAM backed by an anonymous host mapping.
public struct MemoryRegion: Sendable {
    public let guestBase: GuestAddress
    public let size: UInt64
    /// Host address of the mapping's first byte. Only the KVM layer (to register the memory
    /// slot) and `GuestMemory` itself use it.
    public let hostAddress: UInt
    /// A virtio-mem hotplug region: mapped and registered with KVM like RAM (devices may DMA
    /// into plugged blocks), but left out of the boot memory map; the guest learns of it from
    /// the virtio-mem device.
    public let hotpluggable: Bool

    public var guestEnd: UInt64 { guestBase.raw + size }

    @inlinable public func contains(_ address: GuestAddress, length: UInt64) -> Bool {
        guard address.raw >= guestBase.raw else { return false }
        let offset = address.raw - guestBase.raw
        return offset <= size && length <= size - offset
    }
}

/// Guest physical memory: a set of non-overlapping regions, each mapped once at creation and
/// unmapped when the value goes away. All accesses are bounds-checked against one region (an
/// access may not straddle two regions). The guest may change any byte at any time: callers
/// copy what they read and validate it after the copy.
public final class GuestMemory: @unchecked Sendable {
    public let regions: [MemoryRegion]

    /// Maps `layout` (base, size) pairs of boot RAM and `hotplug` ones of hotplug regions.
    /// Sizes must be non-zero multiples of 4 KiB, bases 4 KiB-aligned, and ranges must not
    /// overlap. Every mapping is MAP_NORESERVE: host memory is taken when first touched.
    /// `hugePages` advises boot RAM onto transparent huge pages (true) or keeps it on small
    /// pages (false); see `mapAligned`.
    public init(layout: [(base: GuestAddress, size: UInt64)],
                hotplug: [(base: GuestAddress, size: UInt64)] = [], hugePages: Bool = true) throws(MemoryError) {
        let entries = layout.map { (base: $0.base, size: $0.size, hotpluggable: false) }
            + hotplug.map { (base: $0.base, size: $0.size, hotpluggable: true) }
        let sorted = entries.sorted { $0.base < $1.base }
        var previousEnd: UInt64 = 0
        for (index, entry) in sorted.enumerated() {
            guard entry.size > 0, entry.size % 4096 == 0, entry.base.raw % 4096 == 0 else {
                throw .badLayout("region \(entry.base)+\(entry.size) is empty or not 4 KiB-aligned")
            }
            guard entry.base.adding(entry.size) != nil else {
                throw .badLayout("region \(entry.base)+\(entry.size) overflows the address space")
            }
            if index > 0 && entry.base.raw < previousEnd {
                throw .badLayout("region \(entry.base) overlaps the region before it")
            }
            previousEnd = entry.base.raw + entry.size
        }
        var mapped: [MemoryRegion] = []
        for entry in sorted {
            let pointer: UnsafeMutableRawPointer
            do throws(SystemError) {
                pointer = try GuestMemory.mapAligned(size: entry.size, hugePages: entry.hotpluggable ? nil : hugePages)
            } catch {
                for region in mapped { munmap(UnsafeMutableRawPointer(bitPattern: region.hostAddress), Int(region.size)) }
                throw .mapFailed(entry.base, size: entry.size, error)
            }
            mapped.append(MemoryRegion(guestBase: entry.base, size: entry.size,
                                       hostAddress: UInt(bitPattern: pointer), hotpluggable: entry.hotpluggable))
        }
        regions = mapped
    }

    /// The host alignment of every region: a 2 MiB-aligned guest range then sits on a 2 MiB
    /// host range, so the host can back it with a transparent huge page and KVM can map it with
    /// one large page-table entry (as QEMU aligns its RAM blocks). Guest bases are multiples of
    /// 2 MiB in the layouts the VMM makes (0, 4 GiB, the 1 GiB-aligned hotplug region).
    public static let hostAlignment: UInt = 2 << 20

    /// An anonymous MAP_NORESERVE mapping of `size` bytes at a `hostAlignment`-aligned address
    /// (over-mapped by the alignment, then trimmed). Boot RAM is advised MADV_HUGEPAGE
    /// (`hugePages` true), which matters where the host's THP mode is "madvise", or
    /// MADV_NOHUGEPAGE (false: small pages even where the mode is "always", so the host holds
    /// only the 4 KiB pages the guest touched rather than every 2 MiB page it touched a byte
    /// of); hotplug regions (nil) get no advice: their 2 MiB-aligned blocks go back whole.
    static func mapAligned(size: UInt64, hugePages: Bool?) throws(SystemError) -> UnsafeMutableRawPointer {
        let alignment = hostAlignment
        let length = Int(size) + Int(alignment)
        let raw = mmap(nil, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
        guard let raw, raw != MAP_FAILED else { throw SystemError(call: "mmap", errno: Glibc.errno) }
        let start = UInt(bitPattern: raw)
        let aligned = (start + alignment - 1) & ~(alignment - 1)
        // SAFETY: both trims lie inside the mapping just made: [start, aligned) before the
        // aligned range and [aligned + size, start + length) after it.
        if aligned > start { munmap(raw, Int(aligned - start)) }
        let end = aligned + UInt(size)
        if start + UInt(length) > end { munmap(UnsafeMutableRawPointer(bitPattern: end), Int(start + UInt(length) - end)) }
        let pointer = UnsafeMutableRawPointer(bitPattern: aligned)!
        if let hugePages {
            // Advice only: a host without THP refuses it (EINVAL) and the guest gets small pages.
            _ = madvise(pointer, Int(size), hugePages ? MADV_HUGEPAGE : MADV_NOHUGEPAGE)
        }
        return pointer
    }

    deinit {
        for region in regions {
            // SAFETY: each region was mapped by init with exactly this address and size.
            munmap(UnsafeMutableRawPointer(bitPattern: region.hostAddress), Int(region.size))
        }
    }

    /// Total bytes of guest RAM.
    public var totalSize: UInt64 { regions.reduce(0) { $0 + $1.size } }

    /// The regions the boot memory map (e820) describes: all but hotplug regions.
    public var bootRegions: [MemoryRegion] { regions.filter { !$0.hotpluggable } }

    /// The region holding the whole range, or nil.
    public func region(containing address: GuestAddress, length: UInt64) -> MemoryRegion? {
        regions.first { $0.contains(address, length: length) }
    }

    /// Whether the whole range lies inside one region.
    public func isValid(_ address: GuestAddress, length: UInt64) -> Bool {
        region(containing: address, length: length) != nil
    }

    /// Runs `body` with a host view of `length` bytes at `address`. The buffer must not escape.
    public func withBytes<R>(
        at address: GuestAddress, length: UInt64,
        _ body: (UnsafeMutableRawBufferPointer) throws -> R
    ) throws -> R {
        guard let region = region(containing: address, length: length) else {
            throw MemoryError.outOfRange(address, length: length)
        }
        let offset = address.raw - region.guestBase.raw
        // SAFETY: region.contains() checked offset + length <= region.size, and the mapping
        // lives as long as self, which outlives this call.
        let start = UnsafeMutableRawPointer(bitPattern: region.hostAddress)!.advanced(by: Int(offset))
        return try body(UnsafeMutableRawBufferPointer(start: start, count: Int(length)))
    }

    /// Runs `body` once with host views of several ranges, in order; every range is checked
    /// first (the first one outside guest RAM throws, naming it, and `body` does not run). The
    /// buffers must not escape. One call for a whole scatter list, where nesting `withBytes`
    /// once per range would cost a closure and a lookup per level (a 1 MiB virtio-blk request
    /// is 256 of them). Inlinable, so callers get it specialized: an unspecialized generic on a
    /// device's path has the Swift runtime instantiate metadata at its first request, after the
    /// start-up pages were let go (`ExecutableText`), which cost the VMM 0.7 MiB of resident
    /// pages when `Queue.readChain` used `withBytes` this way.
    @inlinable
    public func withBytes<R>(
        ofRanges ranges: [(address: GuestAddress, length: UInt64)],
        _ body: ([UnsafeMutableRawBufferPointer]) throws -> R
    ) throws -> R {
        var views: [UnsafeMutableRawBufferPointer] = []
        views.reserveCapacity(ranges.count)
        for (address, length) in ranges {
            guard let region = region(containing: address, length: length) else {
                throw MemoryError.outOfRange(address, length: length)
            }
            // SAFETY: region.contains() checked offset + length <= region.size, and the mapping
            // lives as long as self, which outlives this call; the views do not leave `body`.
            let start = UnsafeMutableRawPointer(bitPattern: region.hostAddress)!.advanced(by: Int(address.raw - region.guestBase.raw))
            views.append(UnsafeMutableRawBufferPointer(start: start, count: Int(length)))
        }
        return try body(views)
    }

    /// Copies `bytes` into guest memory at `address`.
    public func write(_ bytes: UnsafeRawBufferPointer, at address: GuestAddress) throws(MemoryError) {
        guard let region = region(containing: address, length: UInt64(bytes.count)) else {
            throw .outOfRange(address, length: UInt64(bytes.count))
        }
        guard bytes.count > 0 else { return }
        // SAFETY: the range was checked against the region above.
        let dest = UnsafeMutableRawPointer(bitPattern: region.hostAddress)!.advanced(by: Int(address.raw - region.guestBase.raw))
        dest.copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
    }

    /// Copies `bytes` into guest memory at `address`.
    public func write(_ bytes: [UInt8], at address: GuestAddress) throws(MemoryError) {
        let result: Result<Void, MemoryError> = bytes.withUnsafeBytes { raw in
            Result { () throws(MemoryError) in try write(raw, at: address) }
        }
        try result.get()
    }

    /// Copies `count` bytes out of guest memory.
    public func read(count: Int, at address: GuestAddress) throws(MemoryError) -> [UInt8] {
        guard let region = region(containing: address, length: UInt64(count)) else {
            throw .outOfRange(address, length: UInt64(count))
        }
        let offset = Int(address.raw - region.guestBase.raw)
        return [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            // SAFETY: the range was checked against the region above; buffer holds count bytes.
            let source = UnsafeRawPointer(bitPattern: region.hostAddress)!.advanced(by: offset)
            if count > 0 { UnsafeMutableRawPointer(buffer.baseAddress!).copyMemory(from: source, byteCount: count) }
            initialized = count
        }
    }

    /// Reads a value of a plain type (unaligned access is fine). A naturally aligned 2-, 4- or
    /// 8-byte value is read in one access (`WholeAccess`), so a field the guest rewrites
    /// meanwhile reads as its old or its new value.
    public func load<T: BitwiseCopyable>(_ type: T.Type = T.self, at address: GuestAddress) throws(MemoryError) -> T {
        guard let region = region(containing: address, length: UInt64(MemoryLayout<T>.size)) else {
            throw .outOfRange(address, length: UInt64(MemoryLayout<T>.size))
        }
        // SAFETY: the T-sized range is inside the region (checked above).
        let source = UnsafeRawPointer(bitPattern: region.hostAddress)!.advanced(by: Int(address.raw - region.guestBase.raw))
        return WholeAccess.load(T.self, from: source) ?? source.loadUnaligned(as: T.self)
    }

    /// Writes a value of a plain type (unaligned access is fine); a naturally aligned 2-, 4- or
    /// 8-byte value in one access, so the guest never sees half of it.
    public func store<T: BitwiseCopyable>(_ value: T, at address: GuestAddress) throws(MemoryError) {
        guard let region = region(containing: address, length: UInt64(MemoryLayout<T>.size)) else {
            throw .outOfRange(address, length: UInt64(MemoryLayout<T>.size))
        }
        // SAFETY: the T-sized range is inside the region (checked above).
        let dest = UnsafeMutableRawPointer(bitPattern: region.hostAddress)!.advanced(by: Int(address.raw - region.guestBase.raw))
        if !WholeAccess.store(value, to: dest) { dest.storeBytes(of: value, as: T.self) }
    }

    /// Sets `length` bytes at `address` to zero.
    public func zero(at address: GuestAddress, length: UInt64) throws(MemoryError) {
        guard let region = region(containing: address, length: length) else {
            throw .outOfRange(address, length: length)
        }
        // SAFETY: the range is inside the region (checked above).
        let dest = UnsafeMutableRawPointer(bitPattern: region.hostAddress)!.advanced(by: Int(address.raw - region.guestBase.raw))
        memset(dest, 0, Int(length))
    }
}
