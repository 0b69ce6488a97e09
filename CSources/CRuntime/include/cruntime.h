// C shim for the host runtime: the calls Swift's Glibc module cannot express (SCM_RIGHTS
// control messages, whose CMSG_* macros do not import; ptys, signalfd, eventfd, pipe2 and
// posix_spawn's closefrom, which it does not export). No logic.
#ifndef KVMRUN_CRUNTIME_H
#define KVMRUN_CRUNTIME_H
#include <spawn.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#pragma clang assume_nonnull begin

/// Sends `fd` over the connected Unix socket `socket` as SCM_RIGHTS, with `name` (may be
/// empty) as the message's bytes (runc sends the pty master this way). 0, or -1 with errno.
int kvmrun_send_fd(int socket, int fd, const char *name);

/// Receives one SCM_RIGHTS descriptor from `socket` (close-on-exec); -1 with errno set
/// (EBADMSG when the message carried no descriptor).
int kvmrun_recv_fd(int socket);

/// Opens a pty pair, both ends O_RDWR | O_NOCTTY | O_CLOEXEC: posix_openpt, grantpt, unlockpt,
/// ptsname_r, open the slave; the slave's line discipline in raw mode (cfmakeraw), its window
/// `rows` x `columns` unless either is 0. 0, or -1 with errno (nothing is left open then).
int kvmrun_open_pty(int *master, int *slave, unsigned short rows, unsigned short columns);

/// TIOCSCTTY: makes the terminal `fd` the caller's controlling terminal (a session leader's).
int kvmrun_set_controlling_tty(int fd);

/// TIOCGWINSZ: rows and columns of the terminal `fd`.
int kvmrun_rt_window_size(int fd, unsigned short *rows, unsigned short *columns);

/// pipe2(2).
int kvmrun_rt_pipe2(int fds[_Nonnull 2], int flags);

/// posix_spawn_file_actions_addclosefrom_np: the child closes every descriptor from `from` up.
int kvmrun_spawn_add_closefrom(posix_spawn_file_actions_t *actions, int from);

/// The real-time signal range glibc leaves to programs (SIGRTMIN and SIGRTMAX are functions).
int kvmrun_sigrtmin(void);
int kvmrun_sigrtmax(void);

/// POSIX_SPAWN_SETSID (a _GNU_SOURCE constant): the child starts a new session.
short kvmrun_spawn_setsid_flag(void);


/// posix_spawn_file_actions_addchdir_np: the child starts in `path`.
int kvmrun_spawn_add_chdir(posix_spawn_file_actions_t *actions, const char *path);

#pragma clang assume_nonnull end
#endif
