// See include/cruntime.h.
#define _GNU_SOURCE
#include "cruntime.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

int kvmrun_send_fd(int socket, int fd, const char *name) {
    char payload[256];
    size_t length = strnlen(name, sizeof(payload) - 1);
    if (length == 0) { payload[0] = 0; length = 1; } else { memcpy(payload, name, length); }
    struct iovec vector = { .iov_base = payload, .iov_len = length };
    union { struct cmsghdr header; char bytes[CMSG_SPACE(sizeof(int))]; } control;
    memset(&control, 0, sizeof(control));
    struct msghdr message = {
        .msg_iov = &vector, .msg_iovlen = 1,
        .msg_control = control.bytes, .msg_controllen = sizeof(control.bytes),
    };
    struct cmsghdr *header = CMSG_FIRSTHDR(&message);
    header->cmsg_level = SOL_SOCKET;
    header->cmsg_type = SCM_RIGHTS;
    header->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(header), &fd, sizeof(int));
    ssize_t sent;
    do { sent = sendmsg(socket, &message, MSG_NOSIGNAL); } while (sent < 0 && errno == EINTR);
    return sent < 0 ? -1 : 0;
}

int kvmrun_recv_fd(int socket) {
    char payload[256];
    struct iovec vector = { .iov_base = payload, .iov_len = sizeof(payload) };
    union { struct cmsghdr header; char bytes[CMSG_SPACE(sizeof(int))]; } control;
    struct msghdr message = {
        .msg_iov = &vector, .msg_iovlen = 1,
        .msg_control = control.bytes, .msg_controllen = sizeof(control.bytes),
    };
    ssize_t got;
    do { got = recvmsg(socket, &message, MSG_CMSG_CLOEXEC); } while (got < 0 && errno == EINTR);
    if (got < 0) return -1;
    struct cmsghdr *header = CMSG_FIRSTHDR(&message);
    if (header == NULL || header->cmsg_level != SOL_SOCKET || header->cmsg_type != SCM_RIGHTS
        || header->cmsg_len != CMSG_LEN(sizeof(int))) {
        errno = EBADMSG;
        return -1;
    }
    int fd;
    memcpy(&fd, CMSG_DATA(header), sizeof(int));
    return fd;
}

int kvmrun_open_pty(int *master, int *slave, unsigned short rows, unsigned short columns) {
    int pty = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (pty < 0) return -1;
    char name[128];
    int other = -1;
    if (grantpt(pty) != 0 || unlockpt(pty) != 0 || ptsname_r(pty, name, sizeof(name)) != 0) goto fail;
    other = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (other < 0) goto fail;
    struct termios mode;
    if (tcgetattr(other, &mode) != 0) goto fail;
    cfmakeraw(&mode);
    if (tcsetattr(other, TCSANOW, &mode) != 0) goto fail;
    if (rows != 0 && columns != 0) {
        struct winsize size = { .ws_row = rows, .ws_col = columns };
        if (ioctl(other, TIOCSWINSZ, &size) != 0) goto fail;
    }
    *master = pty;
    *slave = other;
    return 0;
fail:;
    int code = errno;
    if (other >= 0) close(other);
    close(pty);
    errno = code;
    return -1;
}

int kvmrun_set_controlling_tty(int fd) { return ioctl(fd, TIOCSCTTY, 0); }

int kvmrun_rt_window_size(int fd, unsigned short *rows, unsigned short *columns) {
    struct winsize size;
    if (ioctl(fd, TIOCGWINSZ, &size) != 0) return -1;
    *rows = size.ws_row;
    *columns = size.ws_col;
    return 0;
}

int kvmrun_rt_pipe2(int fds[2], int flags) { return pipe2(fds, flags); }

int kvmrun_spawn_add_closefrom(posix_spawn_file_actions_t *actions, int from) {
    return posix_spawn_file_actions_addclosefrom_np(actions, from);
}

int kvmrun_sigrtmin(void) { return SIGRTMIN; }
int kvmrun_sigrtmax(void) { return SIGRTMAX; }


short kvmrun_spawn_setsid_flag(void) { return POSIX_SPAWN_SETSID; }

int kvmrun_spawn_add_chdir(posix_spawn_file_actions_t *actions, const char *path) {
    return posix_spawn_file_actions_addchdir_np(actions, path);
}
