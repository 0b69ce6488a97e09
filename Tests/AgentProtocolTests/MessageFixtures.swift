/// One populated instance of every request and response type of the method table, in protobuf
/// text format (field names as in Sources/AgentProtocol/Protos). Together they set every field
/// of every message those calls carry, nested ones included (the OCI spec inside
/// CreateContainerRequest, the stats inside StatsContainerResponse, ...).
enum MessageFixtures {
    static let storage = """
        driver: "blk" driver_options: "block_size=4096" source: "/dev/vdb" fstype: "ext4"
        options: "ro" options: "noatime" mount_point: "/run/kata/rootfs"
        fs_group { group_id: 1000 group_change_policy: ON_ROOT_MISMATCH } shared: true
        """

    static let process = """
        terminal: true console_size { height: 24 width: 80 }
        user { uid: 1000 gid: 100 additional_gids: 10 additional_gids: 20 username: "app" }
        args: "/bin/sh" args: "-c" args: "echo hi" env: "PATH=/bin" env: "TERM=xterm" cwd: "/work"
        capabilities { bounding: "CAP_CHOWN" effective: "CAP_KILL" inheritable: "CAP_NET_RAW"
                       permitted: "CAP_SETUID" ambient: "CAP_SYS_TIME" }
        rlimits { type: "RLIMIT_NOFILE" hard: 1024 soft: 512 }
        no_new_privileges: true apparmor_profile: "unconfined" oom_score_adj: -500 selinux_label: "s0"
        """

    static let resources = """
        devices { allow: true type: "c" major: 1 minor: 3 access: "rwm" }
        memory { limit: 268435456 reservation: 134217728 swap: 536870912 kernel: 1 kernel_tcp: 2
                 swappiness: 60 disable_oom_killer: true }
        cpu { shares: 1024 quota: 50000 period: 100000 realtime_runtime: 950 realtime_period: 1000
              cpus: "0-1" mems: "0" }
        pids { limit: 100 }
        block_io { weight: 500 leaf_weight: 300
                   weight_device { major: 254 minor: 0 weight: 200 leaf_weight: 100 }
                   throttle_read_bps_device { major: 254 minor: 0 rate: 1048576 }
                   throttle_write_bps_device { major: 254 minor: 1 rate: 2097152 }
                   throttle_read_iops_device { major: 254 minor: 2 rate: 100 }
                   throttle_write_iops_device { major: 254 minor: 3 rate: 200 } }
        hugepage_limits { pagesize: "2MB" limit: 4194304 }
        network { class_id: 7 priorities { name: "eth0" priority: 3 } }
        """

    static let spec = """
        version: "1.1.0" process { \(process) } root { path: "/run/kata/rootfs/abc" readonly: true }
        hostname: "abc" mounts { destination: "/proc" source: "proc" type: "proc" options: "nosuid" }
        hooks { prestart { path: "/bin/hook" args: "hook" env: "A=1" timeout: 5 }
                poststart { path: "/bin/p" } poststop { path: "/bin/q" } create_runtime { path: "/bin/r" }
                create_container { path: "/bin/s" } start_container { path: "/bin/t" } }
        annotations { key: "io.kubernetes.cri.container-type" value: "sandbox" }
        linux { uid_mappings { host_id: 100000 container_id: 0 size: 65536 }
                gid_mappings { host_id: 100000 container_id: 0 size: 65536 }
                sysctl { key: "net.ipv4.ip_forward" value: "1" }
                resources { \(resources) } cgroups_path: "/kata/abc"
                namespaces { type: "pid" } namespaces { type: "network" path: "/var/run/netns/x" }
                devices { path: "/dev/null" type: "c" major: 1 minor: 3 file_mode: 438 uid: 0 gid: 0 }
                seccomp { default_action: "SCMP_ACT_ERRNO" architectures: "SCMP_ARCH_X86_64" flags: "SPEC_ALLOW"
                          syscalls { names: "read" names: "write" action: "SCMP_ACT_ALLOW" errnoret: 1
                                     args { index: 0 value: 1 value_two: 2 op: "SCMP_CMP_EQ" } } }
                rootfs_propagation: "rslave" masked_paths: "/proc/kcore" readonly_paths: "/proc/sys"
                mount_label: "s0:c1" intel_rdt { l3_cache_schema: "L3:0=ff" } }
        solaris { dummy: "x" } windows { dummy: "y" }
        """

    static let interface = """
        device: "eth0" name: "eth0"
        ip_addresses { family: v4 address: "10.0.0.2" mask: "24" }
        ip_addresses { family: v6 address: "fd00::2" mask: "64" }
        mtu: 1500 hw_addr: "02:00:00:00:00:01" device_path: "/devices/virtio-mmio/net0" type: "tap" raw_flags: 4099
        """

    static let route = """
        dest: "10.0.0.0/24" gateway: "10.0.0.1" device: "eth0" source: "10.0.0.2" scope: 253 family: v4 flags: 1 mtu: 1400
        """

    static let memoryData = "usage: 1 max_usage: 2 failcnt: 3 limit: 4"

    static let stats = """
        cgroup_stats {
            cpu_stats { cpu_usage { total_usage: 100 percpu_usage: 60 percpu_usage: 40 usage_in_kernelmode: 30 usage_in_usermode: 70 }
                        throttling_data { periods: 1 throttled_periods: 2 throttled_time: 3 } }
            memory_stats { cache: 5 usage { \(memoryData) } swap_usage { \(memoryData) } kernel_usage { \(memoryData) }
                           use_hierarchy: true stats { key: "rss" value: 4096 } }
            pids_stats { current: 3 limit: 100 }
            blkio_stats { io_service_bytes_recursive { major: 254 minor: 0 op: "Read" value: 4096 }
                          io_serviced_recursive { major: 254 minor: 0 op: "Write" value: 1 }
                          io_queued_recursive { op: "Total" value: 2 } io_service_time_recursive { value: 3 }
                          io_wait_time_recursive { value: 4 } io_merged_recursive { value: 5 }
                          io_time_recursive { value: 6 } sectors_recursive { value: 7 } }
            hugetlb_stats { key: "2MB" value { usage: 1 max_usage: 2 failcnt: 3 } } }
        network_stats { name: "eth0" rx_bytes: 1 rx_packets: 2 rx_errors: 3 rx_dropped: 4
                        tx_bytes: 5 tx_packets: 6 tx_errors: 7 tx_dropped: 8 }
        """

    /// Keyed by the full message name.
    static let all: [String: String] = [
        "grpc.CreateSandboxRequest": """
            hostname: "sandbox" dns: "nameserver 10.0.0.1" storages { \(storage) } sandbox_pidns: true
            sandbox_id: "sb-1" guest_hook_path: "/usr/share/oci/hooks"
            kernel_modules { name: "overlay" parameters: "redirect_dir=on" }
            """,
        "grpc.DestroySandboxRequest": "",
        "grpc.CreateContainerRequest": """
            container_id: "abc" exec_id: "abc" string_user { uid: "1000" gid: "100" additional_gids: "10" }
            devices { id: "vdb" type: "blk" vm_path: "/dev/vdb" container_path: "/dev/data" options: "ro" }
            storages { \(storage) } oci { \(spec) } sandbox_pidns: true
            shared_mounts { name: "m" src_ctr: "a" src_path: "/x" dst_ctr: "b" dst_path: "/y" }
            stdin_port: 1025 stdout_port: 1026 stderr_port: 1027
            """,
        "grpc.StartContainerRequest": #"container_id: "abc""#,
        "grpc.RemoveContainerRequest": #"container_id: "abc" timeout: 10"#,
        "grpc.UpdateContainerRequest": "container_id: \"abc\" resources { \(resources) }",
        "grpc.StatsContainerRequest": #"container_id: "abc""#,
        "grpc.StatsContainerResponse": stats,
        "grpc.PauseContainerRequest": #"container_id: "abc""#,
        "grpc.ResumeContainerRequest": #"container_id: "abc""#,
        "grpc.ExecProcessRequest": """
            container_id: "abc" exec_id: "e1" string_user { uid: "0" gid: "0" } process { \(process) }
            stdin_port: 2001 stdout_port: 2002 stderr_port: 2003
            """,
        "grpc.SignalProcessRequest": #"container_id: "abc" exec_id: "e1" signal: 15"#,
        "grpc.WaitProcessRequest": #"container_id: "abc" exec_id: "e1""#,
        "grpc.WaitProcessResponse": "status: 137",
        "grpc.WriteStreamRequest": #"container_id: "abc" exec_id: "e1" data: "hello\n\000\377""#,
        "grpc.WriteStreamResponse": "len: 8",
        "grpc.ReadStreamRequest": #"container_id: "abc" exec_id: "e1" len: 65536"#,
        "grpc.ReadStreamResponse": #"data: "output\r\n\001""#,
        "grpc.CloseStdinRequest": #"container_id: "abc" exec_id: "e1""#,
        "grpc.TtyWinResizeRequest": #"container_id: "abc" exec_id: "e1" row: 50 column: 132"#,
        "grpc.UpdateInterfaceRequest": "interface { \(interface) }",
        "types.Interface": interface,
        "grpc.UpdateRoutesRequest": "routes { routes { \(route) } routes { dest: \"\" gateway: \"10.0.0.1\" family: v4 } }",
        "grpc.Routes": "routes { \(route) } routes { family: v6 dest: \"fd00::/64\" }",
        "grpc.ListInterfacesRequest": "",
        "grpc.Interfaces": "interfaces { \(interface) } interfaces { name: \"lo\" }",
        "grpc.ListRoutesRequest": "",
        "grpc.OnlineCPUMemRequest": "wait: true nb_cpus: 2 cpu_only: true",
        "grpc.GuestDetailsRequest": "mem_block_size: true mem_hotplug_probe: true",
        "grpc.GuestDetailsResponse": """
            mem_block_size_bytes: 134217728 support_mem_hotplug_probe: true
            agent_details { version: "0.1.0" init_daemon: true device_handlers: "blk" storage_handlers: "local"
                            supports_seccomp: true extra_features: "ttrpc" }
            """,
        "grpc.SetGuestDateTimeRequest": "sec: 1764633600 usec: 250000",
        "grpc.CopyFileRequest": """
            path: "/run/kata-containers/shared/abc/resolv.conf" file_size: 20 file_mode: 420 dir_mode: 493
            uid: 0 gid: -1 offset: 0 data: "nameserver 10.0.0.1\\n"
            """,
        "grpc.GetOOMEventRequest": "",
        "grpc.OOMEvent": #"container_id: "abc""#,
        "google.protobuf.Empty": "",
        "grpc.CheckRequest": #"service: "grpc.AgentService""#,
        "grpc.HealthCheckResponse": "status: NOT_SERVING",
        "grpc.VersionCheckResponse": #"grpc_version: "ttrpc 1.2" agent_version: "kvmrun-agent 0.1""#,
        "ttrpc.Request": #"service: "grpc.Health" method: "Check" payload: "\n\001x" timeout_nano: 5000000000 metadata { key: "k" value: "v" }"#,
        "ttrpc.Response": #"status { code: 5 message: "not found" details { type_url: "type.googleapis.com/x" value: "\001" } } payload: "\001""#,
        "types.ARPNeighbor": #"to_ip_address { family: v4 address: "10.0.0.9" mask: "32" } device: "eth0" lladdr: "02:00:00:00:00:09" state: 128 flags: 1"#,
    ]
}
