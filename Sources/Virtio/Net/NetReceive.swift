#if canImport(Glibc)
import Glibc
#endif
import Memory

extension NetDevice {
    enum ReadOutcome {
        case frame(Int)
        case dropped
        case empty
        case failed(String)
    }

    /// Moves frames from the backend into receive chains until the backend is empty, the driver
    /// has no free buffer (then the backend is no longer watched) or `budget` frames were read.
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
                    var next = state.pendingChain
                    if next == nil { next = try nextReceiveChain(&active) }
                    guard let chain = next else {
                        watch = false  // until the driver adds buffers
                        break
                    }
                    state.pendingChain = nil
                    state.stagedLength = nil
                    guard chain.writableLength >= length else {
                        // Cannot happen with a Linux driver (its buffers fit the largest frame it
                        // negotiated); drop the frame and keep the chain for the next one.
                        rxDropped.add(1, ordering: .relaxed)
                        state.pendingChain = chain
                        continue
                    }
                    try deliver(&state, length: length, into: chain, active.memory)
                    try active.rx.addUsed(active.memory, head: chain.head, length: UInt32(length))
                    rxPackets.add(1, ordering: .relaxed)
                    rxBytes.add(UInt64(length - NetSpec.headerSize), ordering: .relaxed)
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
                log("virtio-net \(backend.label): \(failure); receiving stopped")
            }
            setWatching(&state, watch)
            let notify = delivered > 0 && !active.rx.interruptsSuppressed(active.memory)
            return .success(notify ? active.interrupt : nil)
        }
        try result.get()?.signalUsedBuffers()
    }

    /// Reads one frame into the staging buffer (sets `stagedLength`). Frames shorter than the
    /// virtio-net header are dropped.
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
                return .failed("read: \(String(cString: strerror(code)))")
            }
            guard count >= NetSpec.headerSize else {
                rxDropped.add(1, ordering: .relaxed)
                return .dropped
            }
            // num_buffers (the tap leaves it alone): one chain per frame without MRG_RXBUF.
            state.rxBuffer[NetSpec.numBuffersOffset] = 1
            state.rxBuffer[NetSpec.numBuffersOffset + 1] = 0
            state.stagedLength = count
            return .frame(count)
        }
    }

    /// The next receive chain, checked: device-writable only, room for the header at least.
    private func nextReceiveChain(_ active: inout Active) throws(VirtioDeviceError) -> DescriptorChain? {
        guard let chain = try active.rx.pop(active.memory) else { return nil }
        guard chain.readableLength == 0 else {
            throw VirtioDeviceError("receive chain \(chain.head) has device-readable buffers")
        }
        guard chain.writableLength >= NetSpec.headerSize else {
            throw VirtioDeviceError("receive chain \(chain.head) has \(chain.writableLength) bytes, less than the \(NetSpec.headerSize)-byte header")
        }
        return chain
    }

    /// Copies the staged frame into `chain`'s buffers, in order.
    private func deliver(_ state: inout State, length: Int, into chain: DescriptorChain,
                         _ memory: GuestMemory) throws(VirtioDeviceError) {
        let outcome: MemoryError? = state.rxBuffer.withUnsafeBytes { frame in
            var offset = 0
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
            return nil
        }
        if let outcome { throw VirtioDeviceError("writing a received frame into chain \(chain.head): \(outcome)") }
    }
}
