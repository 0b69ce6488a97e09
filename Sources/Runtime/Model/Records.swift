// What the runtime stores per sandbox and per container (JSON under the root, written
// atomically, read under the sandbox's lock). Everything a later command, a crash recovery or
// a snapshot needs is here: no state lives only in a process.

/// A host process the runtime started, identified by pid and its start time (field 22 of
/// /proc/PID/stat), so a recycled pid is never mistaken for it.
public struct ProcessIdentity: Codable, Sendable, Equatable {
    public var pid: Int32
    public var startTime: UInt64

    public init(pid: Int32, startTime: UInt64) {
        self.pid = pid
        self.startTime = startTime
    }

    /// The identity of a live process, nil when there is none of that pid.
    public static func of(_ pid: Int32) -> ProcessIdentity? {
        guard pid > 0, let text = AtomicFile.readBytes("/proc/\(pid)/stat").map({ String(decoding: $0, as: UTF8.self) }),
              let close = text.lastIndex(of: ")") else { return nil }
        // Fields after "comm)": state is field 3, starttime field 22.
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 19, let start = UInt64(fields[19]), fields[0] != "Z" else { return nil }
        return ProcessIdentity(pid: pid, startTime: start)
    }

    /// Whether this very process still runs (not a zombie, not a recycled pid).
    public var isAlive: Bool { ProcessIdentity.of(pid) == self }
}

/// One pre-created virtio-blk slot of a sandbox VM; a container's rootfs image is swapped in.
public struct BlockSlot: Codable, Sendable, Equatable {
    public var index: Int
    /// The drive id the VMM's control API knows it by.
    public var driveID: String
    /// The guest's device node, in virtio-mmio probe order: /dev/vdb for slot 0 behind the
    /// agent's root disk (/dev/vda when the agent boots from an initramfs).
    public var guestDevice: String
    /// The container whose rootfs it holds; nil when free (backed by the empty placeholder).
    public var containerID: String?
}

public struct SandboxRecord: Codable, Sendable {
    public var id: String
    public var state: SandboxState
    public var createdAt: String
    public var vmm: ProcessIdentity?
    public var apiSocket: String
    public var vsockSocket: String
    public var consoleLog: String
    /// vCPUs online in the guest (grown by containers' CPU limits, see RuntimeCPUs.swift).
    public var vcpus: Int
    public var baseMemoryMiB: UInt64
    public var hotplugRegionMiB: UInt64
    /// The sum of the hot-added memory of the containers in it.
    public var hotpluggedMiB: UInt64
    public var blockSlots: [BlockSlot]
    public var network: SandboxNetwork?
    /// Its containers, in creation order; the first is the sandbox's own (pod infra) container
    /// when the sandbox was made for a Kubernetes-style sandbox container.
    public var containers: [String]
    /// vCPUs the VM has, online or not (nil in records of older versions: `vcpus`).
    public var maxVcpus: Int? = nil
}

public struct ExecRecord: Codable, Sendable, Equatable {
    public var execID: String
    public var relay: ProcessIdentity
    public var exitFile: String
}

public struct ContainerRecord: Codable, Sendable {
    public var id: String
    public var sandboxID: String
    public var bundle: String
    public var state: ContainerState
    public var createdAt: String
    public var annotations: [String: String]
    /// The host process that stands for the container's init (the relay): `state` reports its pid.
    public var relay: ProcessIdentity?
    public var exitFile: String
    /// Memory hot-added for this container (its limit), MiB.
    public var memoryMiB: UInt64
    public var blockSlot: Int?
    /// The image file attached for its rootfs (its own copy, or the shared one when read-only).
    public var rootfsImage: String?
    public var rootfsImageIsShared: Bool
    public var terminal: Bool
    public var execs: [ExecRecord]
    /// The exit status once stopped (from the relay's exit file), nil before or when unknown.
    public var exitStatus: Int32?
    /// vCPUs its CPU limit asks for (quota over period, rounded up); nil without a quota.
    public var vcpus: Int? = nil
}
