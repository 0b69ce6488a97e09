// See include/cruntime.h.
#define _GNU_SOURCE
#include "cruntime.h"
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <spawn.h>
#include <unistd.h>

int kvmrun_spawn_addclosefrom(posix_spawn_file_actions_t *actions, int from) {
    return posix_spawn_file_actions_addclosefrom_np(actions, from);
}

short kvmrun_spawn_setsid_flag(void) { return POSIX_SPAWN_SETSID; }

int kvmrun_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }

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
