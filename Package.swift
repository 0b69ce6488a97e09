// swift-tools-version: 6.1
// kvmrun: a micro-VMM in Swift that drives Linux KVM directly.
// Layers, bottom to top: CKVM (C shim) → KVM → Memory → Devices → VMM → kvmrun (CLI); beside
// them the guest agent's protocol: AgentProtocol (shared) → AgentServer (guest), AgentClient (host).
import PackageDescription

let package = Package(
    name: "kvmrun",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "kvmrun", targets: ["kvmrun"]),
        .executable(name: "kvmrun-agent", targets: ["kvmrun-agent"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // No traits: the default ones (BinaryDelimitedStreams) pull full Foundation into the agent.
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0", traits: []),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.0"),
    ],
    targets: [
        // C shim over <linux/kvm.h>: ioctl numbers as constants, a few helpers. No logic.
        .target(name: "CKVM", path: "CSources/CKVM"),
        // C shim for TAP devices (/dev/net/tun ioctls).
        .target(name: "CTap", path: "CSources/CTap"),
        // C shim for socket calls Glibc's Swift module lacks (accept4).
        .target(name: "CSocket", path: "CSources/CSocket"),
        // /dev/kvm, VM and vCPU file descriptors, exits, syscall helper.
        // errno-reading syscall helper and owned file descriptors, shared by the layers above.
        .target(name: "Sys"),
        .target(name: "KVM", dependencies: ["CKVM", "Sys"]),
        // Guest physical memory: mmap'd regions, bounds-checked access.
        // C shim: single-access loads and stores of guest memory the guest shares (ring indexes).
        .target(name: "CMemory", path: "CSources/CMemory"),
        .target(name: "Memory", dependencies: ["Sys", "CMemory"]),
        // Emulated devices on the I/O and MMIO buses: 8250 UART, i8042, boot timer.
        .target(name: "Devices", dependencies: ["Memory", "Sys", "CKVM"]),
        // Virtio: split virtqueues, the virtio-mmio transport, and the devices behind it.
        .target(name: "Virtio", dependencies: ["Memory", "Devices", "Sys", "CKVM", "CTap", .product(name: "Logging", package: "swift-log")]),
        // A test double that plays the guest's virtio driver, for device unit tests.
        .target(name: "VirtioTesting", dependencies: ["Virtio", "Memory", "Devices", .product(name: "Logging", package: "swift-log")]),
        // Machine assembly: x86 boot (bzImage/ELF, zero page, e820, MP table), vCPU threads.
        .target(name: "VMM", dependencies: ["KVM", "Memory", "Devices", "Virtio", "CKVM", "Sys", .product(name: "Logging", package: "swift-log")]),
        // Child processes and /proc readings for the benchmarks and the end-to-end tests.
        .target(name: "Harness", dependencies: ["CKVM", "Sys"]),
        // The guest agent protocol, shared by host and guest and nothing else: the .proto files
        // (Protos/), the Swift swift-protobuf generates from them (Generated/, scripts/gen-proto),
        // the ttRPC frame codec and the typed method table. No Foundation (generated code uses
        // FoundationEssentials for `bytes` fields).
        .target(
            name: "AgentProtocol",
            dependencies: [.product(name: "SwiftProtobuf", package: "swift-protobuf")],
            exclude: ["Protos"]
        ),
        // Guest side: the ttRPC server the agent's services register with (pthreads, blocking
        // sockets; no Foundation, no Swift concurrency).
        .target(name: "AgentServer", dependencies: ["AgentProtocol", "Sys", "CSocket"]),
        // Host side: the agent client over the VMM's hybrid-vsock Unix socket.
        .target(name: "AgentClient", dependencies: ["AgentProtocol", "Sys"]),
        // The guest agent (PID 1 of the agent initramfs) and what it is made of. It shares only
        // the protocol with the host side.
        // C shim: container process creation (clone3, namespaces, mounts, pivot_root,
        // credentials, stdio, execve) in the child of a multi-threaded process.
        .target(name: "CSpawn", path: "CSources/CSpawn"),
        // C shim: vsock listener, pty window size, kernel constants for the agent.
        .target(name: "CAgent", path: "CSources/CAgent"),
        // The OCI runtime spec: model, JSON parsing and validation (agent and, later, the runtime CLI).
        .target(name: "OCI"),
        // OCI config.json parsing (FoundationEssentials' JSON coders), for the runtime CLI; the
        // agent takes its specs as protobuf and does not link it.
        .target(name: "OCIJSON", dependencies: ["OCI"]),
        // The agent's logic: sandbox, containers, processes, reaper, cgroups, storage, guest set-up.
        .target(name: "Agent", dependencies: ["CSpawn", "CAgent", "Sys", "OCI", "AgentProtocol", "AgentServer"]),
        .executableTarget(name: "kvmrun-agent", dependencies: ["Agent", "AgentServer", "CAgent", "CSpawn", "Sys"]),
        // Host-side call sequences over the agent client (run a container, read to end-of-file)
        // and busybox container specs: the end-to-end tests, the host tests, kvmrun bench agent.
        .target(name: "AgentHost", dependencies: ["AgentClient", "AgentProtocol", "Sys"]),
        // C shim for the host runtime: SCM_RIGHTS descriptor passing (console sockets).
        .target(name: "CRuntime", path: "CSources/CRuntime"),
        // C shim for the runtime's sandbox networking: a NETLINK_ROUTE socket, setns into a
        // network namespace, persistent TAP creation, rtnetlink/tc constants from the headers.
        .target(name: "CNetlink", path: "CSources/CNetlink"),
        // The sandbox runtime (host side): sandbox and container state machines, on-disk state
        // under flock, the sandbox's VMM process, rootfs images, memory hotplug per container,
        // the per-process host relay, OCI hooks, network namespaces. A library: the CLI's
        // runc-compatible verbs, and later the containerd shim and VM templates, call it.
        .target(name: "Runtime", dependencies: [
            "OCI", "OCIJSON", "AgentClient", "AgentProtocol", "Sys", "CRuntime", "CNetlink",
            .product(name: "Logging", package: "swift-log"),
        ]),
        .executableTarget(
            name: "kvmrun",
            dependencies: ["Runtime", "VMM", "KVM", "Harness", "CKVM", "Sys", "AgentHost", "AgentClient", "AgentProtocol", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        // Pure logic: parsers, layouts, checksums, CPUID filtering. No /dev/kvm needed.
        .testTarget(name: "UnitTests", dependencies: ["VMM", "KVM", "Memory", "Devices", "Virtio", "VirtioTesting", "Harness", "kvmrun", .product(name: "Logging", package: "swift-log")]),
        // The agent protocol: frame codec, messages, server and client over real sockets.
        .testTarget(name: "AgentProtocolTests", dependencies: ["AgentProtocol", "AgentServer", "AgentClient", "Sys"]),
        // The agent's logic on this host: OCI parsing, process creation in namespaces, reaper,
        // stdio, cgroups, users, netlink (no guest needed).
        .testTarget(name: "AgentTests", dependencies: ["Agent", "OCI", "OCIJSON", "CSpawn", "CAgent", "Sys", "AgentHost", "AgentClient", "AgentProtocol", "Harness"]),
        // The runtime's logic on this host: state machines, state files and locks, hooks, spec
        // translation, relays against the agent binary on a Unix socket (no guest needed).
        .testTarget(name: "RuntimeTests", dependencies: ["Runtime", "OCI", "OCIJSON", "AgentClient", "AgentProtocol", "AgentHost", "CRuntime", "CNetlink", "Agent", "Sys", "Harness"]),
        // Tiny hand-assembled guests on the real /dev/kvm (PVM is enough for these).
        .testTarget(name: "KVMTests", dependencies: ["KVM", "Memory", "VMM", "Devices", "CKVM", .product(name: "Logging", package: "swift-log")]),
        // Boot the firmware kernel with the kvmrun binary; needs a hardware-style KVM.
        .testTarget(name: "E2ETests", dependencies: ["Harness", "AgentHost", "AgentClient", "AgentProtocol", "Sys"]),
    ]
)

// Coverage-guided fuzz targets (Fuzz/, `make fuzz`, scripts/fuzz): one tiny libFuzzer executable
// per target, feeding bytes to the real parsing code, and the harness they share. They exist in
// the manifest only when KVMRUN_FUZZ is set, in their own scratch path (.build-fuzz), built with
// -sanitize=fuzzer,address and -enable-testing (targets may `@testable import` what they drive);
// ordinary builds and `swift test` never see them. Each main hands its test function to libFuzzer.
// To add a target: a folder Fuzz/NAME with main.swift (`runFuzzer()`) and a file defining
// `@_cdecl("LLVMFuzzerTestOneInput")`, a line below, and optionally seeds in Fuzz/corpus/NAME (see Fuzz/README.md).
if Context.environment["KVMRUN_FUZZ"] != nil {
    let fuzzTargets: [(name: String, dependencies: [Target.Dependency])] = [
        ("virtqueue", ["FuzzSupport", "Virtio", "Memory"]),
        ("blk", ["FuzzSupport", "Virtio", "Memory"]),
        ("net", ["FuzzSupport", "Virtio", "Memory", .product(name: "Logging", package: "swift-log")]),
        ("vsock", ["FuzzSupport", "Virtio", "Memory", "Sys"]),
        ("mem", ["FuzzSupport", "Virtio", "Memory"]),
        ("mmio", ["FuzzSupport", "Virtio", "Memory"]),
        ("boot", ["FuzzSupport", "VMM", "Memory"]),
        ("api", ["FuzzSupport", "VMM"]),
        ("ttrpc", ["FuzzSupport", "AgentProtocol"]),
    ]
    package.targets.append(.target(name: "CFuzz", path: "CSources/CFuzz"))
    package.targets.append(.target(name: "FuzzSupport", dependencies: ["CFuzz", "Virtio", "VirtioTesting", "Memory", "Devices", .product(name: "Logging", package: "swift-log")],
                                   path: "Fuzz/Support"))
    for target in fuzzTargets {
        package.targets.append(.executableTarget(name: "fuzz-\(target.name)", dependencies: target.dependencies,
                                                 path: "Fuzz/\(target.name)"))
    }
}
