/// A first-in, first-out queue that gives back the room of what it handed out: its storage
/// holds at most about twice what is pending, however long the queue is kept non-empty (the
/// vsock control packets a guest provokes faster than it takes them).
struct PacketFIFO<Element> {
    /// Handed-out elements kept before compaction, so compaction costs O(1) per element.
    static var compactionSlack: Int { 64 }

    private var storage: [Element] = []
    private var head = 0

    var count: Int { storage.count - head }
    var isEmpty: Bool { head == storage.count }
    /// Elements the storage has room for (for tests of the bound).
    var capacity: Int { storage.capacity }

    mutating func append(_ element: Element) { storage.append(element) }

    mutating func popFirst() -> Element? {
        guard head < storage.count else { return nil }
        let element = storage[head]
        head += 1
        if head == storage.count {
            storage.removeAll(keepingCapacity: true)
            head = 0
        } else if head >= PacketFIFO.compactionSlack && head >= count {
            // Drops the handed-out prefix and the storage beyond twice what is left.
            storage = Array(storage[head...])
            head = 0
        }
        return element
    }

    mutating func removeAll() {
        storage = []
        head = 0
    }
}
