import Memory

/// Where the initrd goes: page-aligned, as high as possible below the kernel's limit and
/// the end of low RAM, and never below the end of the kernel.
public enum InitrdPlacement {
    /// - Parameters:
    ///   - addressMax: highest address the initrd's last byte may occupy (initrd_addr_max).
    ///   - kernelEnd: one past the last byte the kernel uses while booting.
    ///   - lowRAMEnd: end of the RAM region at guest address 0.
    public static func address(size: UInt64, addressMax: UInt64, kernelEnd: UInt64,
                               lowRAMEnd: UInt64) throws(BootError) -> GuestAddress {
        let top = min(addressMax == UInt64.max ? addressMax : addressMax + 1, lowRAMEnd)
        let floor = kernelEnd.alignedUp(to: 4096) ?? UInt64.max
        guard size <= top, (top - size).alignedDown(to: 4096) >= floor else {
            throw .initrdTooLarge(size: size, limit: GuestAddress(top), kernelEnd: GuestAddress(kernelEnd))
        }
        return GuestAddress((top - size).alignedDown(to: 4096))
    }
}
