import Memory

extension MachineLayout {
    /// Alignment of the virtio-mem region's start. Linux's driver wants the start and end on
    /// its memory block size (128 MiB on x86-64 below 64 GiB of boot RAM, up to 2 GiB above)
    /// and warns otherwise; 1 GiB keeps every block size up to 1 GiB aligned.
    public static let hotplugAlignment: UInt64 = 1 * .gib

    /// Where the hotplug region goes: above all boot RAM and at or above 4 GiB (never in the
    /// 32-bit MMIO hole), aligned to `hotplugAlignment`. Not in the e820 map.
    public static func hotplugBase(bootLayout: [(base: GuestAddress, size: UInt64)]) -> GuestAddress {
        let ramEnd = bootLayout.map { $0.base.raw + $0.size }.max() ?? 0
        let start = max(ramEnd, mmioGapEnd)
        return GuestAddress((start + hotplugAlignment - 1) & ~(hotplugAlignment - 1))
    }
}
