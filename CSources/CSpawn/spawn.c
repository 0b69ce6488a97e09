// See include/kvmrun_spawn.h. The clone3 calls, the join-mode intermediate, the child's step
// order, executable lookup and the report records. Child code: system calls only.
#define _GNU_SOURCE
#include "child.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
#ifndef P_PIDFD
#define P_PIDFD 3
#endif

static const char *const ns_names[KVMRUN_NS_COUNT] = {"ipc", "uts", "net", "pid", "cgroup", "mnt"};

size_t kvmrun_copy(char *dst, size_t size, const char *src) {
    size_t n = 0;
    if (size == 0) return 0;
    while (src[n] != 0 && n + 1 < size) {
        dst[n] = src[n];
        n++;
    }
    dst[n] = 0;
    return n;
}

int kvmrun_join_path(char *out, const char *root, const char *path) {
    size_t root_length = strlen(root), path_length = strlen(path);
    while (root_length > 0 && root[root_length - 1] == '/') root_length--;
    if (root_length + path_length + 2 > PATH_MAX) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(out, root, root_length);
    size_t n = root_length;
    if (path[0] != '/') out[n++] = '/';
    memcpy(out + n, path, path_length + 1);
    return 0;
}

int kvmrun_child_send(const struct kvmrun_spawn *spawn, int kind, int pid) {
    struct kvmrun_spawn_report report;
    memset(&report, 0, sizeof report);
    report.kind = kind;
    report.pid = pid;
    return send(spawn->report_fd, &report, sizeof report, MSG_NOSIGNAL) == (ssize_t)sizeof report ? 0 : -1;
}

void kvmrun_child_fail(const struct kvmrun_spawn *spawn, const char *step, const char *path, int err) {
    struct kvmrun_spawn_report report;
    memset(&report, 0, sizeof report);
    report.kind = KVMRUN_REPORT_ERROR;
    report.err = err;
    kvmrun_copy(report.step, sizeof report.step, step);
    if (path != NULL) kvmrun_copy(report.path, sizeof report.path, path);
    (void)send(spawn->report_fd, &report, sizeof report, MSG_NOSIGNAL);
    _exit(127);
}

// Default dispositions and an empty mask: the agent blocks SIGCHLD in every thread and
// ignores SIGPIPE; neither may leak into the container.
static void reset_signals(void) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; sig++) (void)sigaction(sig, &action, NULL);   // EINVAL for some: fine
    sigset_t empty;
    sigemptyset(&empty);
    (void)sigprocmask(SIG_SETMASK, &empty, NULL);
}

// Finds argv[0] as execvp would: as given when it has a '/', else in each directory of PATH
// (an empty entry is the working directory). `out` gets the path; -1 when not found.
static int find_executable(const struct kvmrun_spawn *spawn, char out[PATH_MAX]) {
    const char *name = spawn->argv[0];
    struct stat info;
    if (strchr(name, '/') != NULL) {
        if (strlen(name) >= PATH_MAX) kvmrun_child_fail(spawn, "exec", name, ENAMETOOLONG);
        kvmrun_copy(out, PATH_MAX, name);
        if (stat(out, &info) < 0) kvmrun_child_fail(spawn, "exec", name, errno);
        return 0;
    }
    const char *path = spawn->path_env != NULL ? spawn->path_env : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    size_t name_length = strlen(name);
    while (1) {
        const char *end = strchr(path, ':');
        size_t length = end != NULL ? (size_t)(end - path) : strlen(path);
        if (length + name_length + 2 < PATH_MAX) {
            size_t n = 0;
            if (length == 0) {
                out[n++] = '.';
            } else {
                memcpy(out, path, length);
                n = length;
            }
            out[n++] = '/';
            memcpy(out + n, name, name_length + 1);
            if (stat(out, &info) == 0 && S_ISREG(info.st_mode) && access(out, X_OK) == 0) return 0;
        }
        if (end == NULL) break;
        path = end + 1;
    }
    return -1;
}

// The child: every step in order, then execve. Never returns.
static __attribute__((noreturn)) void child_main(const struct kvmrun_spawn *spawn) {
    reset_signals();
    // Nothing of the agent's may reach the container: mark every fd >= 3 close-on-exec (the
    // stdio fds are dup'd onto 0-2, which clears the flag on the copies).
    (void)syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC);
    if (spawn->rootfs != NULL) kvmrun_child_rootfs(spawn);
    kvmrun_child_limits(spawn);
    kvmrun_child_stdio(spawn);
    // From here on only 0-2 and the report socket are needed. Close the rest now rather than
    // at exec: a container waiting for StartContainer must not hold the agent's other fds
    // (another process's stdin pipe would never see end-of-file, a closed connection would
    // stay open).
    if (spawn->report_fd > 3) (void)syscall(SYS_close_range, 3U, (unsigned)spawn->report_fd - 1, 0U);
    (void)syscall(SYS_close_range, (unsigned)spawn->report_fd + 1, ~0U, 0U);
    if (spawn->cwd[0] != 0 && chdir(spawn->cwd) < 0) kvmrun_child_fail(spawn, "chdir", spawn->cwd, errno);
    kvmrun_child_credentials(spawn);
    if (spawn->argv[0] == NULL || spawn->argv[0][0] == 0) kvmrun_child_fail(spawn, "exec", "(empty args)", EINVAL);
    char executable[PATH_MAX];
    if (find_executable(spawn, executable) < 0) kvmrun_child_fail(spawn, "lookup", spawn->argv[0], ENOENT);
    if (spawn->wait_for_start) {
        if (kvmrun_child_send(spawn, KVMRUN_REPORT_READY, 0) < 0) _exit(127);
        char go = 0;
        ssize_t got;
        do {
            got = recv(spawn->report_fd, &go, 1, 0);
        } while (got < 0 && errno == EINTR);
        if (got != 1) _exit(127);   // the parent gave up on this container before starting it
    }
    execve(executable, (char *const *)spawn->argv, (char *const *)spawn->envp);
    kvmrun_child_fail(spawn, "exec", executable, errno);
}

static long clone3(struct clone_args *args) { return syscall(SYS_clone3, args, sizeof *args); }

pid_t kvmrun_spawn(const struct kvmrun_spawn *spawn, int *pidfd) {
    *pidfd = -1;
    struct clone_args args;
    memset(&args, 0, sizeof args);
    args.flags = CLONE_PIDFD;
    args.pidfd = (uint64_t)(uintptr_t)pidfd;
    args.exit_signal = SIGCHLD;
    if (!spawn->join) {
        args.flags |= spawn->clone_flags;
        if (spawn->cgroup_fd >= 0) {
            args.flags |= CLONE_INTO_CGROUP;
            args.cgroup = (uint64_t)spawn->cgroup_fd;
        }
        long pid = clone3(&args);
        if (pid == 0) child_main(spawn);
        return (pid_t)pid;
    }
    long intermediate = clone3(&args);
    if (intermediate != 0) return (pid_t)intermediate;
    // The intermediate child: enter the container's namespaces (the mount namespace last: it
    // also moves root and cwd), then clone the process as a sibling (CLONE_PARENT) so it is
    // the agent's own child, inside the joined PID namespace and the container's cgroup.
    for (int i = 0; i < KVMRUN_NS_COUNT; i++) {
        if (spawn->ns_fds[i] >= 0 && setns(spawn->ns_fds[i], 0) < 0) kvmrun_child_fail(spawn, "setns", ns_names[i], errno);
    }
    struct clone_args child;
    memset(&child, 0, sizeof child);
    child.flags = CLONE_PARENT;   // exit_signal must be 0: the child inherits ours (SIGCHLD)
    if (spawn->cgroup_fd >= 0) {
        child.flags |= CLONE_INTO_CGROUP;
        child.cgroup = (uint64_t)spawn->cgroup_fd;
    }
    long pid = clone3(&child);
    if (pid == 0) child_main(spawn);
    if (pid < 0) kvmrun_child_fail(spawn, "clone3 (exec in container)", NULL, errno);
    (void)kvmrun_child_send(spawn, KVMRUN_REPORT_PID, (int)pid);
    _exit(0);
}

void kvmrun_report_message_init(struct kvmrun_report_message *message, struct kvmrun_spawn_report *record) {
    memset(message, 0, sizeof *message);
    message->record = record;
    message->iov.iov_base = record;
    message->iov.iov_len = sizeof *record;
    message->header.msg_iov = &message->iov;
    message->header.msg_iovlen = 1;
    message->header.msg_control = message->control.bytes;
    message->header.msg_controllen = sizeof message->control.bytes;
}

ssize_t kvmrun_spawn_receive(int fd, struct kvmrun_spawn_report *report, int *passed_fd) {
    *passed_fd = -1;
    struct kvmrun_report_message message;
    kvmrun_report_message_init(&message, report);
    ssize_t got;
    do {
        got = recvmsg(fd, &message.header, MSG_CMSG_CLOEXEC);
    } while (got < 0 && errno == EINTR);
    if (got <= 0) return got;
    for (struct cmsghdr *header = CMSG_FIRSTHDR(&message.header); header != NULL; header = CMSG_NXTHDR(&message.header, header)) {
        if (header->cmsg_level == SOL_SOCKET && header->cmsg_type == SCM_RIGHTS && header->cmsg_len >= CMSG_LEN(sizeof(int))) {
            memcpy(passed_fd, CMSG_DATA(header), sizeof(int));
        }
    }
    if (got != (ssize_t)sizeof *report || (message.header.msg_flags & MSG_TRUNC)) {
        errno = EPROTO;
        return -1;
    }
    report->step[sizeof report->step - 1] = 0;
    report->path[sizeof report->path - 1] = 0;
    return got;
}

dev_t kvmrun_makedev(unsigned int major, unsigned int minor) { return makedev(major, minor); }

int kvmrun_pidfd_open(pid_t pid) { return (int)syscall(SYS_pidfd_open, pid, 0); }

int kvmrun_pidfd_signal(int pidfd, int signal) { return (int)syscall(SYS_pidfd_send_signal, pidfd, signal, NULL, 0); }

int kvmrun_pidfd_reap(int pidfd, int *status) {
    siginfo_t info;
    memset(&info, 0, sizeof info);
    int result;
    do {
        result = waitid((idtype_t)P_PIDFD, (id_t)pidfd, &info, WEXITED | WNOHANG);
    } while (result < 0 && errno == EINTR);
    if (result < 0) return -1;
    if (info.si_pid == 0) return 1;
    switch (info.si_code) {
    case CLD_EXITED: *status = (info.si_status & 0xff) << 8; break;
    case CLD_DUMPED: *status = (info.si_status & 0x7f) | 0x80; break;
    default: *status = info.si_status & 0x7f; break;   // CLD_KILLED
    }
    return 0;
}
