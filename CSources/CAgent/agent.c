// See include/kvmrun_agent.h.
#define _GNU_SOURCE
#include "kvmrun_agent.h"

#include <errno.h>
#include <sched.h>
#include <fcntl.h>
#include <pthread.h>
#include <linux/magic.h>
#include <linux/sched.h>
#include <linux/vm_sockets.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

const int KVMRUN_AF_VSOCK = AF_VSOCK;
const unsigned int KVMRUN_VMADDR_CID_ANY = VMADDR_CID_ANY;
const unsigned long KVMRUN_MS_MOVE = MS_MOVE;
const unsigned long KVMRUN_MS_BIND = MS_BIND;
const unsigned long KVMRUN_MS_REC = MS_REC;
const unsigned long KVMRUN_MS_PRIVATE = MS_PRIVATE;
const unsigned long KVMRUN_MS_SLAVE = MS_SLAVE;
const unsigned long KVMRUN_MS_SHARED = MS_SHARED;
const unsigned long KVMRUN_MS_UNBINDABLE = MS_UNBINDABLE;
const unsigned long KVMRUN_MS_RDONLY = MS_RDONLY;
const unsigned long KVMRUN_MS_NOSUID = MS_NOSUID;
const unsigned long KVMRUN_MS_NODEV = MS_NODEV;
const unsigned long KVMRUN_MS_NOEXEC = MS_NOEXEC;
const unsigned long KVMRUN_MS_SYNCHRONOUS = MS_SYNCHRONOUS;
const unsigned long KVMRUN_MS_REMOUNT = MS_REMOUNT;
const unsigned long KVMRUN_MS_MANDLOCK = MS_MANDLOCK;
const unsigned long KVMRUN_MS_DIRSYNC = MS_DIRSYNC;
const unsigned long KVMRUN_MS_NOATIME = MS_NOATIME;
const unsigned long KVMRUN_MS_NODIRATIME = MS_NODIRATIME;
const unsigned long KVMRUN_MS_RELATIME = MS_RELATIME;
const unsigned long KVMRUN_MS_STRICTATIME = MS_STRICTATIME;
const unsigned long KVMRUN_MS_LAZYTIME = MS_LAZYTIME;
const unsigned long KVMRUN_MS_SILENT = MS_SILENT;
const int KVMRUN_MNT_DETACH = MNT_DETACH;
const uint64_t KVMRUN_CLONE_NEWNS = CLONE_NEWNS;
const uint64_t KVMRUN_CLONE_NEWPID = CLONE_NEWPID;
const uint64_t KVMRUN_CLONE_NEWUTS = CLONE_NEWUTS;
const uint64_t KVMRUN_CLONE_NEWIPC = CLONE_NEWIPC;
const uint64_t KVMRUN_CLONE_NEWNET = CLONE_NEWNET;
const uint64_t KVMRUN_CLONE_NEWCGROUP = CLONE_NEWCGROUP;
const uint64_t KVMRUN_CLONE_NEWUSER = CLONE_NEWUSER;
const unsigned long KVMRUN_RAMFS_MAGIC = RAMFS_MAGIC;
const unsigned long KVMRUN_TMPFS_MAGIC = TMPFS_MAGIC;
const unsigned long KVMRUN_ST_RDONLY = ST_RDONLY;
const int KVMRUN_NLMSG_ALIGNTO = NLMSG_ALIGNTO;
const int KVMRUN_RB_AUTOBOOT = RB_AUTOBOOT;

int kvmrun_vsock_listen(unsigned int port, int backlog) {
    int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct sockaddr_vm address;
    memset(&address, 0, sizeof address);
    address.svm_family = AF_VSOCK;
    address.svm_cid = VMADDR_CID_ANY;
    address.svm_port = port;
    if (bind(fd, (struct sockaddr *)&address, sizeof address) < 0 || listen(fd, backlog) < 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

int kvmrun_set_window_size(int fd, unsigned short rows, unsigned short columns) {
    struct winsize size;
    memset(&size, 0, sizeof size);
    size.ws_row = rows;
    size.ws_col = columns;
    return ioctl(fd, TIOCSWINSZ, &size);
}

int kvmrun_get_window_size(int fd, unsigned short *rows, unsigned short *columns) {
    struct winsize size;
    memset(&size, 0, sizeof size);
    int result = ioctl(fd, TIOCGWINSZ, &size);
    *rows = size.ws_row;
    *columns = size.ws_col;
    return result;
}

void kvmrun_set_thread_name(const char *name) { (void)pthread_setname_np(pthread_self(), name); }

int kvmrun_pipe2(int fds[2], int flags) { return pipe2(fds, flags); }

int kvmrun_unshare(int flags) { return unshare(flags); }
