#if canImport(Glibc)
import Glibc
#endif
import Memory

extension NetDevice {
    /// Sends every chain the driver made available on the transmit queue (at most one ring's
    /// worth per call: chains added meanwhile come with a notify of their own). A chain is the
    /// virtio-net header and the frame, device-readable only; the backend gets them as one write.
    func transmit() throws(VirtioDeviceError) {
        let result: Result<VirtioInterrupt?, VirtioDeviceError> = state.withLock { state in
            guard var active = state.active else { return .success(nil) }
            var sent = 0
            do throws(VirtioDeviceError) {
                while sent < Int(active.tx.size), let chain = try active.tx.pop(active.memory) {
                    sent += 1
                    guard chain.writableLength == 0 else {
                        throw VirtioDeviceError("transmit chain \(chain.head) has device-writable buffers")
                    }
                    let length = chain.readableLength
                    guard length >= NetSpec.headerSize else {
                        throw VirtioDeviceError("transmit chain \(chain.head) has \(length) bytes, less than the \(NetSpec.headerSize)-byte header")
                    }
                    if length > NetSpec.maxPacket {
                        txDropped.add(1, ordering: .relaxed)
                    } else {
                        try gather(chain, into: &state.txBuffer, active.memory)
                        send(state.txBuffer, length: length)
                    }
                    try active.tx.addUsed(active.memory, head: chain.head, length: 0)
                }
            } catch {
                stop(&state)
                return .failure(error)
            }
            state.active = active
            let notify = sent > 0 && !active.tx.interruptsSuppressed(active.memory)
            return .success(notify ? active.interrupt : nil)
        }
        try result.get()?.signalUsedBuffers()
    }

    /// Copies the chain's readable buffers, in order, to the start of `buffer` (the caller
    /// checked that they fit).
    private func gather(_ chain: DescriptorChain, into buffer: inout [UInt8], _ memory: GuestMemory) throws(VirtioDeviceError) {
        let failed: Bool = buffer.withUnsafeMutableBytes { destination in
            var offset = 0
            for descriptor in chain.descriptors where !descriptor.isWriteOnly {
                let count = Int(descriptor.length)
                do {
                    try memory.withBytes(at: descriptor.address, length: UInt64(count)) { source in
                        // SAFETY: offset + count <= chain.readableLength <= destination.count, and
                        // source is the checked guest range of exactly count bytes.
                        UnsafeMutableRawBufferPointer(rebasing: destination[offset..<(offset + count)])
                            .copyMemory(from: UnsafeRawBufferPointer(source))
                    }
                } catch {
                    return true
                }
                offset += count
            }
            return false
        }
        if failed { throw VirtioDeviceError("transmit chain \(chain.head): a buffer left guest RAM") }
    }

    /// Writes one frame to the backend. A frame the tap refuses (interface down, a header it
    /// rejects, no room) is dropped and counted, as a NIC would.
    private func send(_ buffer: [UInt8], length: Int) {
        let fd = backend.fd
        while true {
            let written = buffer.withUnsafeBytes { bytes in
                // SAFETY: length <= bytes.count (checked against maxPacket by the caller).
                write(fd, bytes.baseAddress, length)
            }
            if written < 0 && errno == EINTR { continue }
            if written == length {
                txPackets.add(1, ordering: .relaxed)
                txBytes.add(UInt64(length - NetSpec.headerSize), ordering: .relaxed)
            } else {
                txErrors.add(1, ordering: .relaxed)
            }
            return
        }
    }
}
