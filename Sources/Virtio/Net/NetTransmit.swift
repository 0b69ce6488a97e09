#if canImport(Glibc)
import Glibc
#endif
import Memory

extension NetDevice {
    /// Sends the chains the driver made available on the transmit queue, at most one ring's
    /// worth per call (`.budgetExhausted` then: the transport asks for another call). A chain
    /// is the virtio-net header and the frame, device-readable only; the backend gets them as
    /// one writev.
    func transmit() throws(VirtioDeviceError) -> QueueWork {
        let result: Result<(VirtioInterrupt?, QueueWork), VirtioDeviceError> = state.withLock { state in
            guard var active = state.active else { return .success((nil, .finished)) }
            let budget = Int(active.tx.size)
            var sent = 0
            do throws(VirtioDeviceError) {
                while sent < budget, let chain = try active.tx.pop(active.memory) {
                    sent += 1
                    guard chain.writableLength == 0 else {
                        throw VirtioDeviceError("transmit chain \(chain.head) has device-writable buffers")
                    }
                    let length = chain.readableLength
                    guard length >= NetSpec.headerSize else {
                        throw VirtioDeviceError("transmit chain \(chain.head) has \(length) bytes, less than the \(NetSpec.headerSize)-byte header")
                    }
                    if length > NetSpec.maxPacket {
                        txDropped.wrappingAdd(1, ordering: .relaxed)
                    } else {
                        try send(chain, length: length, active.memory)
                    }
                    try active.tx.addUsed(active.memory, head: chain.head, length: 0)
                }
            } catch {
                stop(&state)
                return .failure(error)
            }
            state.active = active
            let notify = sent > 0 && !active.tx.interruptsSuppressed(active.memory)
            return .success((notify ? active.interrupt : nil, sent < budget ? .finished : .budgetExhausted))
        }
        let (interrupt, work) = try result.get()
        interrupt?.signalUsedBuffers()
        return work
    }

    /// Writes the chain's readable buffers to the backend as one frame, straight from guest
    /// memory (writev). A frame the tap refuses (interface down, a header it rejects, no room)
    /// is dropped and counted, as a NIC would.
    private func send(_ chain: DescriptorChain, length: Int, _ memory: GuestMemory) throws(VirtioDeviceError) {
        var vectors: [iovec] = []
        vectors.reserveCapacity(chain.descriptors.count)
        for descriptor in chain.descriptors where !descriptor.isWriteOnly {
            guard let region = memory.region(containing: descriptor.address, length: UInt64(descriptor.length)),
                  let base = UnsafeMutableRawPointer(bitPattern: region.hostAddress) else {
                throw VirtioDeviceError("transmit chain \(chain.head): a buffer left guest RAM")
            }
            // SAFETY: the buffer lies inside `region` (checked just above), whose mapping lives as
            // long as `memory`, which outlives the writev below; the kernel only reads it.
            let start = base.advanced(by: Int(descriptor.address.raw - region.guestBase.raw))
            vectors.append(iovec(iov_base: start, iov_len: Int(descriptor.length)))
        }
        let fd = backend.fd
        while true {
            // SAFETY: `vectors` holds vectors.count iovecs (at most the queue size, below IOV_MAX).
            let written = writev(fd, vectors, Int32(vectors.count))
            if written < 0 && errno == EINTR { continue }
            if written == length {
                txPackets.wrappingAdd(1, ordering: .relaxed)
                txBytes.wrappingAdd(UInt64(length - NetSpec.headerSize), ordering: .relaxed)
            } else {
                txErrors.wrappingAdd(1, ordering: .relaxed)
            }
            return
        }
    }
}
