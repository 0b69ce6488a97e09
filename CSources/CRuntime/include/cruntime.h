// C shim for the host runtime: the calls Swift's Glibc module cannot express (SCM_RIGHTS
// control messages, whose CMSG_* macros do not import). No logic.
#ifndef KVMRUN_CRUNTIME_H
#define KVMRUN_CRUNTIME_H
#include <spawn.h>
#pragma clang assume_nonnull begin

/// Sends `fd` over the connected Unix socket `socket` as SCM_RIGHTS, with `name` (may be
/// empty) as the message's bytes (runc sends the pty master this way). 0, or -1 with errno.
int kvmrun_send_fd(int socket, int fd, const char *name);

/// Receives one SCM_RIGHTS descriptor from `socket` (close-on-exec); -1 with errno set
/// (EBADMSG when the message carried no descriptor).
int kvmrun_recv_fd(int socket);

/// posix_spawn_file_actions_addclosefrom_np(actions, from): the child closes every fd >= from.
int kvmrun_spawn_addclosefrom(posix_spawn_file_actions_t *actions, int from);

/// POSIX_SPAWN_SETSID (a _GNU_SOURCE constant): the child starts a new session.
short kvmrun_spawn_setsid_flag(void);

/// pipe2(fds, O_CLOEXEC).
int kvmrun_pipe_cloexec(int fds[_Nonnull 2]);

#pragma clang assume_nonnull end
#endif
