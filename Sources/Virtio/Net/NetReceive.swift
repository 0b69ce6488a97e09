#if canImport(Glibc)
import Glibc
#endif
import Memory
import Logging

extension NetDevice {
    enum ReadOutcome {
        case frame(Int)
        case dropped
        case empty
        case failed(String)
    }

    /// Moves frames from the backend into receive chains until the backend is empty, the driver
    /// has no free buffer (then the backend is no longer watched) or `budget` frames were read.
    /// Without MRG_RXBUF a frame takes one chain; with it, as many as it needs (num_buffers).
    func receive(budget: Int) throws(VirtioDeviceError) {
        let result: Result<VirtioInterrupt?, VirtioDeviceError> = state.withLock { state in
            guard var active = state.active, !state.backendFailed else {
                setWatching(&state, false)
                return .success(nil)
            }
            var delivered = 0
            var watch = true
            var failure: String?
            do throws(VirtioDeviceError) {
                for _ in 0..<budget {
                    var length = state.stagedLength ?? 0
                    if state.stagedLength == nil {
                        switch readFrame(&state) {
                        case let .frame(count): length = count
                        case .dropped: continue
                        case .empty: break
                        case let .failed(reason): failure = reason
                        }
                        if state.stagedLength == nil { break }
                    }
                    guard try collectChains(&state, &active, for: length) else {
                        watch = false  // until the driver adds buffers
                        break
                    }
                    state.stagedLength = nil
                    guard let count = chainsNeeded(state.pendingChains, length) else {
                        // Cannot happen with a Linux driver (its buffers fit the largest frame it
                        // negotiated); drop the frame and keep the chains for the next one.
                        rxDropped.wrappingAdd(1, ordering: .relaxed)
                        continue
                    }
                    let chains = Array(state.pendingChains.prefix(count))
                    state.pendingChains.removeFirst(count)
                    let used = try deliver(&state, length: length, into: chains, active.memory)
                    try active.rx.addUsed(active.memory, elements: used)
                    rxPackets.wrappingAdd(1, ordering: .relaxed)
                    rxBytes.wrappingAdd(UInt64(length - NetSpec.headerSize), ordering: .relaxed)
                    delivered += 1
                }
            } catch {
                stop(&state)
                return .failure(error)
            }
            state.active = active
            if let failure {
                state.backendFailed = true
                watch = false
                logger.warning("virtio-net \(backend.label): \(failure); receiving stopped")
            }
            setWatching(&state, watch)
            let notify = delivered > 0 && !active.rx.interruptsSuppressed(active.memory)
            return .success(notify ? active.interrupt : nil)
        }
        try result.get()?.signalUsedBuffers()
    }

    /// Takes chains from the ring into `pendingChains` until they hold `length` bytes: one chain
    /// at most without MRG_RXBUF, at most a ring's worth with it. False when the ring ran dry.
    private func collectChains(_ state: inout State, _ active: inout Active, for length: Int) throws(VirtioDeviceError) -> Bool {
        var capacity = state.pendingChains.reduce(0) { $0 + $1.writableLength }
        while capacity < length, active.mergeable || state.pendingChains.isEmpty,
              state.pendingChains.count < Int(active.rx.size) {
            guard let chain = try active.rx.pop(active.memory) else { return false }
            guard chain.readableLength == 0 else {
                throw VirtioDeviceError("receive chain \(chain.head) has device-readable buffers")
            }
            guard chain.writableLength >= NetSpec.headerSize else {
                throw VirtioDeviceError("receive chain \(chain.head) has \(chain.writableLength) bytes, less than the \(NetSpec.headerSize)-byte header")
            }
            state.pendingChains.append(chain)
            capacity += chain.writableLength
        }
        return true
    }

    /// How many of `chains`, from the first, hold `length` bytes; nil if all of them do not.
    private func chainsNeeded(_ chains: [DescriptorChain], _ length: Int) -> Int? {
        var capacity = 0
        for (index, chain) in chains.enumerated() {
            capacity += chain.writableLength
            if capacity >= length { return index + 1 }
        }
        return nil
    }

    /// Reads one frame into the staging buffer (sets `stagedLength`). Frames shorter than the
    /// virtio-net header, or that the read fails for, are dropped.
    private func readFrame(_ state: inout State) -> ReadOutcome {
        let fd = backend.fd
        while true {
            let count = state.rxBuffer.withUnsafeMutableBytes { buffer in
                // SAFETY: reads at most buffer.count bytes into the staging buffer.
                read(fd, buffer.baseAddress, buffer.count)
            }
            if count < 0 {
                let code = errno
                if code == EINTR { continue }
                if code == EAGAIN || code == EWOULDBLOCK { return .empty }
                // EBADFD: the tap was deleted. Other errors concern one frame, which the tap
                // has dropped already (the next read gets the next frame).
                if code == EBADFD { return .failed("read: \(String(cString: strerror(code)))") }
                rxDropped.wrappingAdd(1, ordering: .relaxed)
                return .dropped
            }
            guard count >= NetSpec.headerSize else {
                rxDropped.wrappingAdd(1, ordering: .relaxed)
                return .dropped
            }
            state.stagedLength = count
            return .frame(count)
        }
    }

    /// Copies the staged frame across `chains` (which hold it), setting num_buffers in its
    /// header (the tap leaves that field alone). Returns the used elements.
    private func deliver(_ state: inout State, length: Int, into chains: [DescriptorChain],
                         _ memory: GuestMemory) throws(VirtioDeviceError) -> [(head: UInt16, length: UInt32)] {
        let buffers = UInt16(chains.count)
        state.rxBuffer[NetSpec.numBuffersOffset] = UInt8(truncatingIfNeeded: buffers)
        state.rxBuffer[NetSpec.numBuffersOffset + 1] = UInt8(truncatingIfNeeded: buffers >> 8)
        var used: [(head: UInt16, length: UInt32)] = []
        let outcome: MemoryError? = state.rxBuffer.withUnsafeBytes { frame in
            var offset = 0
            for chain in chains {
                let start = offset
                for descriptor in chain.descriptors where descriptor.isWriteOnly && offset < length {
                    let count = min(Int(descriptor.length), length - offset)
                    do throws(MemoryError) {
                        // SAFETY: offset + count <= length <= frame.count.
                        try memory.write(UnsafeRawBufferPointer(rebasing: frame[offset..<(offset + count)]),
                                         at: descriptor.address)
                    } catch {
                        return error
                    }
                    offset += count
                }
                used.append((chain.head, UInt32(offset - start)))
            }
            return nil
        }
        if let outcome { throw VirtioDeviceError("writing a received frame: \(outcome)") }
        return used
    }
}
