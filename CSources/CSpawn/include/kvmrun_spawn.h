// C shim that creates container processes: clone3 into new (or existing) namespaces, the
// container's mounts and pivot_root, credentials, stdio, then execve. It runs in the child
// of a multi-threaded process, so the child side makes system calls only (no malloc, no
// stdio, no locks): every string and array is prepared by the caller before the call.
//
// Every failing step of the child is reported on `report_fd` (one end of a SOCK_SEQPACKET
// socketpair, close-on-exec) as a `kvmrun_spawn_report` naming the step, the path and errno;
// a successful execve closes the child's end, so the parent reads end-of-file.
#ifndef KVMRUN_SPAWN_H
#define KVMRUN_SPAWN_H
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#pragma clang assume_nonnull begin

/// One mount of the container, applied in order below the rootfs before pivot_root.
struct kvmrun_mount {
    const char *_Nullable source;  ///< device, fs name or (bind) a path in the agent's view
    const char *target;            ///< absolute path inside the container
    const char *_Nullable fstype;  ///< NULL for a bind mount
    const char *_Nullable data;    ///< file-system options ("mode=755,size=65536k"), or NULL
    unsigned long flags;           ///< MS_* flags (MS_BIND, MS_REC, MS_RDONLY, MS_NOSUID, ...)
    unsigned long propagation;     ///< 0, or MS_PRIVATE / MS_SLAVE / MS_SHARED (| MS_REC)
};

/// A device node to create in the container (linux.devices of the spec).
struct kvmrun_device {
    const char *path;   ///< absolute path inside the container
    mode_t mode;        ///< S_IFCHR / S_IFBLK / S_IFIFO | permission bits
    dev_t dev;          ///< makedev(major, minor)
    uid_t uid;
    gid_t gid;
};

struct kvmrun_rlimit {
    int resource;       ///< RLIMIT_*
    uint64_t soft;
    uint64_t hard;
};

/// Indexes of `ns_fds`: the namespaces an exec'd process joins, in the order they are entered.
enum {
    KVMRUN_NS_IPC = 0,
    KVMRUN_NS_UTS = 1,
    KVMRUN_NS_NET = 2,
    KVMRUN_NS_PID = 3,
    KVMRUN_NS_CGROUP = 4,
    KVMRUN_NS_MNT = 5,
    KVMRUN_NS_COUNT = 6,
};

struct kvmrun_spawn {
    // Where the process goes.
    uint64_t clone_flags;          ///< CLONE_NEWNS|CLONE_NEWPID|... for a new container, else 0
    int cgroup_fd;                 ///< a cgroup v2 directory (CLONE_INTO_CGROUP), or -1
    int ns_fds[KVMRUN_NS_COUNT];   ///< join mode: /proc/PID/ns/* fds to setns into, -1 to skip
    int join;                      ///< 1: setns into ns_fds, then clone the process (see below)

    // The container's file system (new containers only; rootfs NULL skips all of it).
    const char *_Nullable rootfs;  ///< the mounted rootfs directory to pivot into
    int rootfs_readonly;
    unsigned long rootfs_propagation;  ///< MS_PRIVATE, MS_SLAVE, MS_SHARED (| MS_REC)
    const struct kvmrun_mount *_Nullable mounts;
    size_t mount_count;
    const struct kvmrun_device *_Nullable devices;
    size_t device_count;
    int default_devices;           ///< 1: create null, zero, full, random, urandom, tty, /dev links
    const char *_Nullable const *_Nullable masked_paths;
    size_t masked_count;
    const char *_Nullable const *_Nullable readonly_paths;
    size_t readonly_count;
    const char *_Nullable hostname;
    const char *_Nullable const *_Nullable sysctl_paths;   ///< "/proc/sys/net/ipv4/ip_forward"
    const char *_Nullable const *_Nullable sysctl_values;
    size_t sysctl_count;

    // The process.
    const struct kvmrun_rlimit *_Nullable rlimits;
    size_t rlimit_count;
    int set_oom_score_adj;
    int oom_score_adj;
    uid_t uid;
    gid_t gid;
    const gid_t *_Nullable groups;
    size_t group_count;
    int set_capabilities;          ///< 0: keep root's full set (or what setuid leaves)
    int cap_last;                  ///< /proc/sys/kernel/cap_last_cap
    uint64_t cap_bounding, cap_effective, cap_permitted, cap_inheritable, cap_ambient;
    int no_new_privileges;
    const char *_Nullable cwd;     ///< required
    const char *_Nullable const *_Nullable argv;  ///< required: argv[0] is the program as given; NULL-terminated
    const char *_Nullable const *_Nullable envp;  ///< required, NULL-terminated
    const char *_Nullable path_env;        ///< PATH used to find argv[0] when it has no '/'

    // Stdio: fds dup'd onto 0, 1, 2 (-1: /dev/null). With `terminal`, the child instead opens a
    // pty in the container (/dev/ptmx), passes the master to the parent over report_fd
    // (a KVMRUN_REPORT_CONSOLE record with the fd in SCM_RIGHTS), and makes the slave its
    // controlling terminal on 0, 1, 2.
    int stdin_fd, stdout_fd, stderr_fd;
    int terminal;
    unsigned short rows, columns;  ///< initial window size of the pty (0: leave)

    // Reporting and start.
    int report_fd;                 ///< the child's end of the socketpair (SOCK_CLOEXEC)
    int wait_for_start;            ///< 1: send READY, then wait for one byte on report_fd
};

enum {
    KVMRUN_REPORT_READY = 1,       ///< set-up done; waiting for the start byte
    KVMRUN_REPORT_ERROR = 2,       ///< a step failed (step, path, err); the child exits 127
    KVMRUN_REPORT_PID = 3,         ///< join mode: the pid (agent's view) of the process
    KVMRUN_REPORT_CONSOLE = 4,     ///< the pty master travels with this record (SCM_RIGHTS)
};

/// One record on the report socket (one message each, fixed size).
struct kvmrun_spawn_report {
    int32_t kind;
    int32_t err;        ///< errno of a failed step, 0 otherwise
    int32_t pid;        ///< KVMRUN_REPORT_PID
    char step[64];      ///< "mount", "pivot_root", "exec", ...
    char path[384];     ///< what the step worked on, truncated
};

/// Creates the process described by `spawn`.
///
/// New container (join = 0): one clone3 with `clone_flags`, CLONE_INTO_CGROUP when cgroup_fd
/// >= 0, and CLONE_PIDFD; the child becomes the container's init. Returns its pid and stores
/// a pidfd in *pidfd.
///
/// Join (join = 1): an intermediate child enters the namespaces in ns_fds, clones the real
/// process with CLONE_PARENT (so it is the caller's child, in the joined PID namespace and
/// cgroup), sends its pid as a KVMRUN_REPORT_PID record and exits. Returns the intermediate's
/// pid (an exited child the caller's reaper collects); *pidfd is -1. The caller learns the
/// process's pid from the PID record.
///
/// Returns -1 with errno set when clone3 itself fails.
pid_t kvmrun_spawn(const struct kvmrun_spawn *spawn, int *pidfd);

/// Receives one report record from `fd` (the parent's end). Returns the record's size
/// (sizeof(struct kvmrun_spawn_report)), 0 at end-of-file (the child exec'd or exited), or -1
/// with errno. A passed fd (CONSOLE records) is stored in *passed_fd (close-on-exec), else -1.
ssize_t kvmrun_spawn_receive(int fd, struct kvmrun_spawn_report *report, int *passed_fd);

/// makedev(3).
dev_t kvmrun_makedev(unsigned int major, unsigned int minor);

/// pidfd_open(2).
int kvmrun_pidfd_open(pid_t pid);

/// waitid(P_PIDFD, pidfd, WEXITED | WNOHANG): 0 and the wait(2) status in *status when the
/// process was reaped, 1 when it still runs, -1 with errno (ECHILD: already reaped).
int kvmrun_pidfd_reap(int pidfd, int *status);

/// pidfd_send_signal(2).
int kvmrun_pidfd_signal(int pidfd, int signal);

#pragma clang assume_nonnull end
#endif
