/// virtio-rng's counters for the control API's `GET /metrics`.
extension RngDevice: CountingDevice {
    public var counters: [String: UInt64] { ["bytes_served": bytesServed] }
}
