// C shim for the host runtime: the calls Swift's Glibc module cannot express (SCM_RIGHTS
// control messages, whose CMSG_* macros do not import). No logic.
#ifndef KVMRUN_CRUNTIME_H
#define KVMRUN_CRUNTIME_H
#pragma clang assume_nonnull begin

/// Sends `fd` over the connected Unix socket `socket` as SCM_RIGHTS, with `name` (may be
/// empty) as the message's bytes (runc sends the pty master this way). 0, or -1 with errno.
int kvmrun_send_fd(int socket, int fd, const char *name);

/// Receives one SCM_RIGHTS descriptor from `socket` (close-on-exec); -1 with errno set
/// (EBADMSG when the message carried no descriptor).
int kvmrun_recv_fd(int socket);

#pragma clang assume_nonnull end
#endif
