/// The hotplug part of `--memory 256M,hotplug=2G[,block=2M][,requested=SIZE]`: a virtio-mem
/// region of `regionSize` bytes, handed to the guest in blocks of `blockSize`, of which
/// `requestedSize` is asked for at boot. (Owned by the virtio-mem work.)
public struct HotplugOption: Equatable, Sendable {
    /// Smallest block: Linux's virtio-mem driver works in page blocks (2 MiB on x86-64).
    public static let minimumBlockSize: UInt64 = 2 << 20
    /// x86-64 Linux adds and removes memory in memory blocks of 128 MiB; a region that is not
    /// a multiple of it would leave memory the guest cannot use.
    public static let linuxMemoryBlockSize: UInt64 = 128 << 20
    /// Upper bound on the region, so that it stays inside a 40-bit guest-physical address space.
    public static let maximumRegionSize: UInt64 = 512 << 30

    public var regionSize: UInt64
    public var blockSize: UInt64
    public var requestedSize: UInt64

    public init(regionSize: UInt64, blockSize: UInt64 = 2 << 20, requestedSize: UInt64 = 0) {
        self.regionSize = regionSize
        self.blockSize = blockSize
        self.requestedSize = requestedSize
    }

    /// Parses the full `--memory` text: returns the boot RAM size and the hotplug option, if any.
    public static func parseMemory(_ text: String) throws(VMMError) -> (UInt64, HotplugOption?) {
        let parsed = try parseMemoryOption(text)
        return (parsed.ram, parsed.hotplug)
    }

    /// Parses the full `--memory` text, `SIZE[,hotplug=SIZE[,block=SIZE][,requested=SIZE]][,thp=on|off]`:
    /// the boot RAM size, the hotplug option, if any, and whether boot RAM is advised onto
    /// transparent huge pages (`thp=on`, the default, as QEMU does; `off` keeps small pages,
    /// so the host holds only the 4 KiB pages the guest touched: denser, for sandboxes).
    public static func parseMemoryOption(_ text: String) throws(VMMError) -> (ram: UInt64, hotplug: HotplugOption?, hugePages: Bool) {
        let keys = "keys: hotplug, block, requested, thp"
        let parts = text.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        let ram = try size(parts[0], name: "RAM size")
        var values: [String: UInt64] = [:]
        var hugePages: Bool?
        for part in parts.dropFirst() {
            guard let equals = part.firstIndex(of: "=") else {
                throw .config("--memory: '\(part)' is not KEY=VALUE (\(keys))")
            }
            let key = String(part[..<equals]).trimmingSpaces
            let value = String(part[part.index(after: equals)...])
            if key == "thp" {
                guard hugePages == nil else { throw .config("--memory: thp= given twice") }
                switch value.trimmingSpaces {
                case "on": hugePages = true
                case "off": hugePages = false
                default: throw .config("--memory: thp= must be on or off (got '\(value)')")
                }
                continue
            }
            guard ["hotplug", "block", "requested"].contains(key) else {
                throw .config("--memory: unknown key '\(key)' (\(keys))")
            }
            guard values[key] == nil else { throw .config("--memory: \(key)= given twice") }
            values[key] = try size(value, name: key + "=")
        }
        guard !values.isEmpty else { return (ram, nil, hugePages ?? true) }
        guard let region = values["hotplug"] else {
            throw .config("--memory: block= and requested= need hotplug=SIZE (the hotplug region)")
        }
        let option = HotplugOption(regionSize: region, blockSize: values["block"] ?? minimumBlockSize,
                                   requestedSize: values["requested"] ?? 0)
        try option.validate()
        return (ram, option, hugePages ?? true)
    }

    /// Checks the sizes against each other and against what Linux's virtio-mem driver needs.
    public func validate() throws(VMMError) {
        let block = SizeParser.format(blockSize), region = SizeParser.format(regionSize)
        guard blockSize >= HotplugOption.minimumBlockSize, blockSize & (blockSize - 1) == 0 else {
            throw .config("--memory: block=\(block) must be a power of two of at least 2 MiB (the guest's page block)")
        }
        guard regionSize > 0, regionSize <= HotplugOption.maximumRegionSize else {
            throw .config("--memory: hotplug=\(region) must be between 128 MiB and \(SizeParser.format(HotplugOption.maximumRegionSize))")
        }
        guard regionSize % HotplugOption.linuxMemoryBlockSize == 0 else {
            throw .config("--memory: hotplug=\(region) must be a multiple of 128 MiB (the x86 Linux memory block)")
        }
        guard regionSize % blockSize == 0 else {
            throw .config("--memory: hotplug=\(region) must be a multiple of block=\(block)")
        }
        try checkTarget(requestedSize, name: "--memory: requested=")
    }

    /// Checks a requested size (at boot or from the control API) against the region.
    public func checkTarget(_ bytes: UInt64, name: String) throws(VMMError) {
        guard bytes <= regionSize else {
            throw .config("\(name)\(SizeParser.format(bytes)) is larger than the hotplug region (\(SizeParser.format(regionSize)))")
        }
        guard bytes % blockSize == 0 else {
            throw .config("\(name)\(SizeParser.format(bytes)) is not a multiple of the block size (\(SizeParser.format(blockSize)))")
        }
    }

    private static func size(_ text: String, name: String) throws(VMMError) -> UInt64 {
        do {
            return try SizeParser.parse(text)
        } catch {
            throw .config("--memory: \(name) \(error)")
        }
    }
}
