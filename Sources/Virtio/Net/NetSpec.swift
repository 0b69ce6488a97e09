import CTap

/// virtio-net constants (virtio 1.x, 5.1) and how negotiated features map to tap offloads.
public enum NetSpec {
    /// Queue 0 receives (device → driver), queue 1 transmits; no control queue.
    public static let receiveQueue = 0
    public static let transmitQueue = 1
    public static let queueSize: UInt16 = 256

    /// `struct virtio_net_hdr_v1`: flags, gso_type, hdr_len, gso_size, csum_start,
    /// csum_offset, num_buffers. With VERSION_1 it is always 12 bytes and it is what the tap
    /// reads and writes with IFF_VNET_HDR and TUNSETVNETHDRSZ 12.
    public static let headerSize = 12
    /// Offset of num_buffers in the header.
    public static let numBuffersOffset = 10
    /// Largest frame either way: a 64 KiB GSO packet, its Ethernet and VLAN headers, and the
    /// virtio-net header.
    public static let maxPacket = headerSize + 65535 + 14 + 4

    /// Config space: mac[6], status (u16).
    public static let configSize = 8
    public static let statusLinkUp: UInt16 = 1

    public enum Feature {
        public static let csum: UInt64 = 1 << 0
        public static let guestCsum: UInt64 = 1 << 1
        public static let mac: UInt64 = 1 << 5
        public static let guestTSO4: UInt64 = 1 << 7
        public static let guestTSO6: UInt64 = 1 << 8
        public static let guestECN: UInt64 = 1 << 9
        public static let guestUFO: UInt64 = 1 << 10
        public static let hostTSO4: UInt64 = 1 << 11
        public static let hostTSO6: UInt64 = 1 << 12
        public static let hostECN: UInt64 = 1 << 13
        public static let mergeableRxBuffers: UInt64 = 1 << 15
        public static let status: UInt64 = 1 << 16
    }

    /// What kvmrun's virtio-net offers. Guest-side (receive) offloads become tap offloads once
    /// the driver accepts them; host-side (transmit) offloads need nothing from the tap, which
    /// takes partial checksums and GSO frames with IFF_VNET_HDR. MRG_RXBUF lets the driver post
    /// page-sized receive buffers instead of 64 KiB ones when it accepts TSO.
    public static let offeredFeatures: UInt64 = VirtioFeature.version1 | Feature.mac | Feature.status
        | Feature.csum | Feature.hostTSO4 | Feature.hostTSO6 | Feature.hostECN
        | Feature.guestCsum | Feature.guestTSO4 | Feature.guestTSO6 | Feature.guestECN
        | Feature.mergeableRxBuffers

    /// TUNSETOFFLOAD flags for the features the driver accepted: what the tap may hand the
    /// guest (partial checksums, TSO frames). The tap ignores TSO without checksum offload, and
    /// so does the spec (GUEST_TSO* require GUEST_CSUM), so without it there are none.
    public static func tapOffloads(for features: UInt64) -> UInt32 {
        guard features & Feature.guestCsum != 0 else { return 0 }
        var flags = UInt32(KVMRUN_TUN_F_CSUM)
        if features & Feature.guestTSO4 != 0 { flags |= UInt32(KVMRUN_TUN_F_TSO4) }
        if features & Feature.guestTSO6 != 0 { flags |= UInt32(KVMRUN_TUN_F_TSO6) }
        if features & Feature.guestECN != 0, flags & UInt32(KVMRUN_TUN_F_TSO4 | KVMRUN_TUN_F_TSO6) != 0 {
            flags |= UInt32(KVMRUN_TUN_F_TSO_ECN)
        }
        return flags
    }
}
