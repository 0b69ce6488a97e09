// C copies of Swift values for one call into a C shim: strings, NULL-terminated string
// arrays and plain arrays, all freed together when the arena goes away.
#if canImport(Glibc)
import Glibc
#endif

// SAFETY: every pointer handed out points into a malloc'd block this arena owns, sized for
// what was copied into it, and stays valid until the arena is deinitialised (after the call).
final class CArena {
    private var allocations: [UnsafeMutableRawPointer] = []

    deinit { for pointer in allocations { free(pointer) } }

    func string(_ value: String) -> UnsafePointer<CChar> {
        let copy = strdup(value)!
        allocations.append(copy)
        return UnsafePointer(copy)
    }

    func string(_ value: String?) -> UnsafePointer<CChar>? { value.map { string($0) } }

    /// `values` as C strings, followed by NULL when `terminated`.
    func strings(_ values: [String], terminated: Bool = true) -> UnsafePointer<UnsafePointer<CChar>?> {
        let array = allocate(UnsafePointer<CChar>?.self, count: values.count + 1)
        for (index, value) in values.enumerated() { array[index] = string(value) }
        array[values.count] = nil
        return UnsafePointer(array)
    }

    func array<T>(_ values: [T]) -> UnsafePointer<T>? {
        guard !values.isEmpty else { return nil }
        let array = allocate(T.self, count: values.count)
        // SAFETY: `array` has room for values.count elements.
        for (index, value) in values.enumerated() { (array + index).initialize(to: value) }
        return UnsafePointer(array)
    }

    private func allocate<T>(_ type: T.Type, count: Int) -> UnsafeMutablePointer<T> {
        let raw = malloc(max(1, count) * MemoryLayout<T>.stride)!
        allocations.append(raw)
        return raw.bindMemory(to: T.self, capacity: count)
    }
}
