// C shim for the guest agent: kernel interfaces Swift cannot call directly (variadic ioctl,
// sockaddr_vm) and constants from kernel headers. No logic.
#ifndef KVMRUN_AGENT_H
#define KVMRUN_AGENT_H
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/if_arp.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/statfs.h>
#include <sys/mount.h>
#include <sys/time.h>
#include <sys/reboot.h>
#pragma clang assume_nonnull begin

/// socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC), bind to (VMADDR_CID_ANY, port), listen.
/// Returns the fd, or -1 with errno set (the fd is closed then).
int kvmrun_vsock_listen(unsigned int port, int backlog);

/// TIOCSWINSZ on a pty master.
int kvmrun_set_window_size(int fd, unsigned short rows, unsigned short columns);

/// TIOCGWINSZ: rows and columns of a terminal.
int kvmrun_get_window_size(int fd, unsigned short *rows, unsigned short *columns);


/// pipe2(2) (not exported by Swift's Glibc module without _GNU_SOURCE).
int kvmrun_pipe2(int fds[_Nonnull 2], int flags);

/// unshare(2) (for tests that need a namespace of their own on one thread).
int kvmrun_unshare(int flags);

/// pthread_setname_np for the calling thread (names show in /proc/PID/task/*/comm).
void kvmrun_set_thread_name(const char *name);

/// Constants that are macros or enum values awkward to import.
extern const int KVMRUN_AF_VSOCK;
extern const unsigned int KVMRUN_VMADDR_CID_ANY;
extern const unsigned long KVMRUN_MS_MOVE;
extern const unsigned long KVMRUN_MS_BIND;
extern const unsigned long KVMRUN_MS_REC;
extern const unsigned long KVMRUN_MS_PRIVATE;
extern const unsigned long KVMRUN_MS_SLAVE;
extern const unsigned long KVMRUN_MS_SHARED;
extern const unsigned long KVMRUN_MS_UNBINDABLE;
extern const unsigned long KVMRUN_MS_RDONLY;
extern const unsigned long KVMRUN_MS_NOSUID;
extern const unsigned long KVMRUN_MS_NODEV;
extern const unsigned long KVMRUN_MS_NOEXEC;
extern const unsigned long KVMRUN_MS_SYNCHRONOUS;
extern const unsigned long KVMRUN_MS_REMOUNT;
extern const unsigned long KVMRUN_MS_MANDLOCK;
extern const unsigned long KVMRUN_MS_DIRSYNC;
extern const unsigned long KVMRUN_MS_NOATIME;
extern const unsigned long KVMRUN_MS_NODIRATIME;
extern const unsigned long KVMRUN_MS_RELATIME;
extern const unsigned long KVMRUN_MS_STRICTATIME;
extern const unsigned long KVMRUN_MS_LAZYTIME;
extern const unsigned long KVMRUN_MS_SILENT;
extern const int KVMRUN_MNT_DETACH;
extern const uint64_t KVMRUN_CLONE_NEWNS;
extern const uint64_t KVMRUN_CLONE_NEWPID;
extern const uint64_t KVMRUN_CLONE_NEWUTS;
extern const uint64_t KVMRUN_CLONE_NEWIPC;
extern const uint64_t KVMRUN_CLONE_NEWNET;
extern const uint64_t KVMRUN_CLONE_NEWCGROUP;
extern const uint64_t KVMRUN_CLONE_NEWUSER;
extern const unsigned long KVMRUN_RAMFS_MAGIC;
extern const unsigned long KVMRUN_TMPFS_MAGIC;
extern const unsigned long KVMRUN_ST_RDONLY;   // statfs f_flags: mounted read-only

/// Netlink message alignment (NLMSG_ALIGNTO, RTA_ALIGNTO: 4).
extern const int KVMRUN_NLMSG_ALIGNTO;
/// reboot(2) command: restart (the VMM ends the VM on the guest's reset).
extern const int KVMRUN_RB_AUTOBOOT;

#pragma clang assume_nonnull end
#endif
