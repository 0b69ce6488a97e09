/// The virtio devices a VM gets besides virtio-rng (always present), as parsed from the CLI.
/// Each option type lives in its own file next to this one and parses its CLI syntax.
public struct DeviceOptions: Sendable {
    /// `--disk path=…,readonly=on|off,id=…` (repeatable).
    public var disks: [DiskOption] = []
    /// `--net tap=NAME,mac=…` (repeatable).
    public var nets: [NetOption] = []
    /// `--vsock cid=N,uds=PATH`.
    public var vsock: VsockOption?
    /// `--memory SIZE,hotplug=SIZE[,block=SIZE]`.
    public var hotplug: HotplugOption?
    /// `--api-socket PATH`.
    public var apiSocket: String?

    public init() {}
}
