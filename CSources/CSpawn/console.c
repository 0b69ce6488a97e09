// Stdio of the child (see include/kvmrun_spawn.h): a new session, then either the given fds
// on 0, 1, 2, or a pty opened inside the container whose master goes to the parent over the
// report socket (SCM_RIGHTS) and whose slave becomes the controlling terminal.
#define _GNU_SOURCE
#include "child.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO('T', 0x41)
#endif

static void send_console(const struct kvmrun_spawn *spawn, int master) {
    struct kvmrun_spawn_report report;
    memset(&report, 0, sizeof report);
    report.kind = KVMRUN_REPORT_CONSOLE;
    struct kvmrun_report_message message;
    kvmrun_report_message_init(&message, &report);
    struct cmsghdr *header = CMSG_FIRSTHDR(&message.header);
    header->cmsg_level = SOL_SOCKET;
    header->cmsg_type = SCM_RIGHTS;
    header->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(header), &master, sizeof(int));
    if (sendmsg(spawn->report_fd, &message.header, MSG_NOSIGNAL) < 0) kvmrun_child_fail(spawn, "send pty master", NULL, errno);
}

// dup2 onto 0, 1, 2 from copies above them, so a source that already sits on 0-2 cannot be
// overwritten before it is used, and every target loses close-on-exec.
static void install(const struct kvmrun_spawn *spawn, const int source[3]) {
    int copies[3];
    for (int i = 0; i < 3; i++) {
        copies[i] = fcntl(source[i], F_DUPFD_CLOEXEC, 10);
        if (copies[i] < 0) kvmrun_child_fail(spawn, "dup stdio", NULL, errno);
    }
    for (int i = 0; i < 3; i++) {
        if (dup2(copies[i], i) < 0) kvmrun_child_fail(spawn, "dup2 stdio", NULL, errno);
        close(copies[i]);
    }
}

void kvmrun_child_stdio(const struct kvmrun_spawn *spawn) {
    if (setsid() < 0) kvmrun_child_fail(spawn, "setsid", NULL, errno);
    if (!spawn->terminal) {
        int source[3] = {spawn->stdin_fd, spawn->stdout_fd, spawn->stderr_fd};
        install(spawn, source);
        return;
    }
    int master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (master < 0) kvmrun_child_fail(spawn, "open pty", "/dev/ptmx", errno);
    int unlock = 0;
    if (ioctl(master, TIOCSPTLCK, &unlock) < 0) kvmrun_child_fail(spawn, "unlock pty", "/dev/ptmx", errno);
    int slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (slave < 0) kvmrun_child_fail(spawn, "open pty slave", "/dev/ptmx", errno);
    if (spawn->rows != 0 && spawn->columns != 0) {
        struct winsize size = {.ws_row = spawn->rows, .ws_col = spawn->columns};
        if (ioctl(master, TIOCSWINSZ, &size) < 0) kvmrun_child_fail(spawn, "set window size", NULL, errno);
    }
    if (fchown(slave, spawn->uid, (gid_t)-1) < 0) kvmrun_child_fail(spawn, "chown pty slave", NULL, errno);
    send_console(spawn, master);
    close(master);
    int source[3] = {slave, slave, slave};
    install(spawn, source);
    if (slave > 2) close(slave);
    if (ioctl(0, TIOCSCTTY, 0) < 0) kvmrun_child_fail(spawn, "set controlling terminal", NULL, errno);
}
