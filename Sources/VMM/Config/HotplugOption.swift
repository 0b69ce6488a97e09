/// The `hotplug=SIZE[,block=SIZE]` part of `--memory 256M,hotplug=2G`. (Owned by the
/// virtio-mem work.)
public struct HotplugOption: Equatable, Sendable {
    public var regionSize: UInt64
    public var blockSize: UInt64

    public init(regionSize: UInt64, blockSize: UInt64 = 2 << 20) {
        self.regionSize = regionSize
        self.blockSize = blockSize
    }

    /// Parses the full `--memory` text: returns the boot RAM size and the hotplug option, if any.
    public static func parseMemory(_ text: String) throws(VMMError) -> (UInt64, HotplugOption?) {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        let ram: UInt64
        do {
            ram = try SizeParser.parse(parts[0])
        } catch {
            throw .config("--memory: \(error)")
        }
        guard parts.count == 1 else { throw .config("--memory: hotplug is not implemented yet") }
        return (ram, nil)
    }
}
