// Child-side helpers shared by the files of the spawn shim. Everything here runs in the child
// of a multi-threaded process: system calls and stack buffers only.
#ifndef KVMRUN_SPAWN_CHILD_H
#define KVMRUN_SPAWN_CHILD_H
#include "kvmrun_spawn.h"
#include <sys/socket.h>
#include <sys/uio.h>
#pragma clang assume_nonnull begin

/// Sends an ERROR record (step, path, errno) on the report socket and exits with 127.
__attribute__((noreturn)) void kvmrun_child_fail(const struct kvmrun_spawn *spawn, const char *step,
                                                 const char *_Nullable path, int err);

/// Sends a record of `kind` (no fd). Returns 0 or -1.
int kvmrun_child_send(const struct kvmrun_spawn *spawn, int kind, int pid);

/// Copies `src` into `dst` (size `size`), always NUL-terminated; returns the length copied.
size_t kvmrun_copy(char *dst, size_t size, const char *src);

/// `root` + `path` into `out` (PATH_MAX); -1 (ENAMETOOLONG) if it does not fit.
int kvmrun_join_path(char *out, const char *root, const char *path);

/// Creates the directories of `path` below the root directory `rootfd` (resolving every
/// component inside that root, so symlinks in the image cannot lead outside it); when
/// `leaf_file`, the last component is created as an empty file instead of a directory.
/// Returns an O_PATH fd of the final component, or -1 with errno.
int kvmrun_make_in_root(int rootfd, const char *path, int leaf_file, mode_t mode);

/// Opens `path` below `rootfd` with openat2(RESOLVE_IN_ROOT) (O_PATH unless `flags` says more).
int kvmrun_open_in_root(int rootfd, const char *path, int flags);

/// A message of one report record with room for one passed fd (SCM_RIGHTS).
struct kvmrun_report_message {
    struct kvmrun_spawn_report *_Nullable record;
    struct iovec iov;
    struct msghdr header;
    union {
        struct cmsghdr header;
        char bytes[CMSG_SPACE(sizeof(int))];
    } control;
};

/// Points `message` at `record` (iov, control buffer); everything else zeroed.
void kvmrun_report_message_init(struct kvmrun_report_message *message, struct kvmrun_spawn_report *record);

/// "/proc/self/fd/N" for an fd, so mount(2) can target what openat2 resolved.
void kvmrun_fd_path(char *out, int fd);   // out: 32 bytes

/// Container file system (rootfs.c): mounts, devices, pivot_root, read-only root, masked and
/// read-only paths, hostname and sysctls. Fails through kvmrun_child_fail.
void kvmrun_child_rootfs(const struct kvmrun_spawn *spawn);

/// Credentials and limits (creds.c): rlimits, oom_score_adj, groups/gid/uid, capabilities,
/// no_new_privs. Fails through kvmrun_child_fail.
void kvmrun_child_limits(const struct kvmrun_spawn *spawn);
void kvmrun_child_credentials(const struct kvmrun_spawn *spawn);

/// Stdio (console.c): dup2 of the given fds, or a pty opened in the container whose master is
/// sent to the parent. Makes the process a session leader. Fails through kvmrun_child_fail.
void kvmrun_child_stdio(const struct kvmrun_spawn *spawn);

#pragma clang assume_nonnull end
#endif
