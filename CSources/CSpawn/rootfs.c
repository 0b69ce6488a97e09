// The container's file system, in the child (see include/kvmrun_spawn.h): mounts from the
// spec below the rootfs (targets resolved inside the rootfs with openat2(RESOLVE_IN_ROOT)),
// device nodes, pivot_root, the read-only root, masked and read-only paths, hostname and
// sysctls. System calls and stack buffers only.
#define _GNU_SOURCE
#include "child.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

int kvmrun_open_in_root(int rootfd, const char *path, int flags) {
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = (uint64_t)(flags | O_CLOEXEC | ((flags & (O_RDWR | O_WRONLY)) ? 0 : O_PATH));
    how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
    long fd;
    do {
        fd = syscall(SYS_openat2, rootfd, path, &how, sizeof how);
    } while (fd < 0 && (errno == EAGAIN || errno == EINTR));
    return (int)fd;
}

void kvmrun_fd_path(char *out, int fd) {
    char digits[12];
    int n = 0;
    unsigned value = (unsigned)fd;
    do {
        digits[n++] = (char)('0' + value % 10);
        value /= 10;
    } while (value > 0 && n < 11);
    size_t length = kvmrun_copy(out, 32, "/proc/self/fd/");
    while (n > 0) out[length++] = digits[--n];
    out[length] = 0;
}

int kvmrun_make_in_root(int rootfd, const char *path, int leaf_file, mode_t mode) {
    char prefix[PATH_MAX];
    size_t length = 0;
    int current = kvmrun_open_in_root(rootfd, "/", O_DIRECTORY);
    if (current < 0) return -1;
    const char *cursor = path;
    while (1) {
        while (*cursor == '/') cursor++;
        if (*cursor == 0) break;
        const char *end = cursor;
        while (*end != 0 && *end != '/') end++;
        size_t part = (size_t)(end - cursor);
        const char *rest = end;
        while (*rest == '/') rest++;
        int last = *rest == 0;
        if (part > NAME_MAX || length + part + 2 > PATH_MAX) {
            close(current);
            errno = ENAMETOOLONG;
            return -1;
        }
        char name[NAME_MAX + 1];
        memcpy(name, cursor, part);
        name[part] = 0;
        prefix[length++] = '/';
        memcpy(prefix + length, cursor, part);
        length += part;
        prefix[length] = 0;
        int next = kvmrun_open_in_root(rootfd, prefix, 0);
        if (next < 0 && errno == ENOENT && strcmp(name, "..") != 0 && strcmp(name, ".") != 0) {
            // `current` is the parent, resolved inside the root; create the missing entry there.
            if (last && leaf_file) {
                int file = openat(current, name, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
                if (file >= 0) close(file);
            } else {
                (void)mkdirat(current, name, mode);
            }
            next = kvmrun_open_in_root(rootfd, prefix, 0);
        }
        int saved = errno;
        close(current);
        if (next < 0) {
            errno = saved;
            return -1;
        }
        current = next;
        cursor = end;
    }
    return current;
}

// Flags of the mount at `path` as MS_* bits (a remount must keep nosuid, nodev, noexec...).
// statfs(2) itself, not glibc's statvfs, which may fall back to reading /proc/mounts (malloc).
static unsigned long mount_flags_of(const char *path) {
    struct statfs info;
    if (statfs(path, &info) < 0) return 0;
    unsigned long flags = 0;
    if (info.f_flags & ST_NOSUID) flags |= MS_NOSUID;
    if (info.f_flags & ST_NODEV) flags |= MS_NODEV;
    if (info.f_flags & ST_NOEXEC) flags |= MS_NOEXEC;
    if (info.f_flags & ST_NOATIME) flags |= MS_NOATIME;
    if (info.f_flags & ST_NODIRATIME) flags |= MS_NODIRATIME;
    if (info.f_flags & ST_RELATIME) flags |= MS_RELATIME;
    return flags;
}

static const unsigned long remount_bits = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME | MS_RELATIME | MS_STRICTATIME;

static void mount_one(const struct kvmrun_spawn *spawn, int rootfd, const struct kvmrun_mount *m) {
    int bind = (m->flags & MS_BIND) != 0;
    int leaf_file = 0;
    if (bind) {
        struct stat info;
        if (m->source == NULL || stat(m->source, &info) < 0) kvmrun_child_fail(spawn, "bind mount source", m->source, m->source ? errno : EINVAL);
        leaf_file = !S_ISDIR(info.st_mode);
    }
    int target = kvmrun_make_in_root(rootfd, m->target, leaf_file, 0755);
    if (target < 0) kvmrun_child_fail(spawn, "mount target", m->target, errno);
    char where[32];
    kvmrun_fd_path(where, target);
    if (bind) {
        if (mount(m->source, where, NULL, MS_BIND | (m->flags & MS_REC), NULL) < 0) kvmrun_child_fail(spawn, "bind mount", m->target, errno);
    } else {
        if (mount(m->source, where, m->fstype, m->flags, m->data) < 0) kvmrun_child_fail(spawn, "mount", m->target, errno);
    }
    close(target);
    // What was mounted: reopen, so later steps act on the new mount, not the directory below.
    int mounted = kvmrun_open_in_root(rootfd, m->target, 0);
    if (mounted < 0) kvmrun_child_fail(spawn, "reopen mount", m->target, errno);
    kvmrun_fd_path(where, mounted);
    if (bind && (m->flags & remount_bits) != 0) {
        unsigned long flags = MS_BIND | MS_REMOUNT | (m->flags & remount_bits) | mount_flags_of(where);
        if (mount(NULL, where, NULL, flags, NULL) < 0) kvmrun_child_fail(spawn, "remount bind", m->target, errno);
    }
    if (m->propagation != 0 && mount(NULL, where, NULL, m->propagation, NULL) < 0) kvmrun_child_fail(spawn, "mount propagation", m->target, errno);
    close(mounted);
}

// Splits "/a/b/c" into the parent ("/a/b") and the name ("c") in the caller's buffers.
static int split_path(const char *path, char parent[PATH_MAX], char name[NAME_MAX + 1]) {
    size_t length = strlen(path);
    while (length > 1 && path[length - 1] == '/') length--;
    size_t slash = length;
    while (slash > 0 && path[slash - 1] != '/') slash--;
    size_t name_length = length - slash;
    if (name_length == 0 || name_length > NAME_MAX || slash >= PATH_MAX) return -1;
    memcpy(name, path + slash, name_length);
    name[name_length] = 0;
    memcpy(parent, path, slash);
    parent[slash] = 0;
    if (slash == 0) kvmrun_copy(parent, PATH_MAX, "/");
    return 0;
}

static void make_device(const struct kvmrun_spawn *spawn, int rootfd, const char *path, mode_t mode, dev_t dev, uid_t uid, gid_t gid) {
    char parent[PATH_MAX], name[NAME_MAX + 1];
    if (split_path(path, parent, name) < 0) kvmrun_child_fail(spawn, "device path", path, EINVAL);
    int directory = kvmrun_make_in_root(rootfd, parent, 0, 0755);
    if (directory < 0) kvmrun_child_fail(spawn, "device directory", path, errno);
    if (mknodat(directory, name, mode, dev) < 0 && errno != EEXIST) kvmrun_child_fail(spawn, "mknod", path, errno);
    if (fchownat(directory, name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0) kvmrun_child_fail(spawn, "chown device", path, errno);
    close(directory);
}

static void default_devices(const struct kvmrun_spawn *spawn, int rootfd) {
    static const struct {
        const char *path;
        unsigned major, minor;
    } nodes[] = {
        {"/dev/null", 1, 3}, {"/dev/zero", 1, 5}, {"/dev/full", 1, 7},
        {"/dev/random", 1, 8}, {"/dev/urandom", 1, 9}, {"/dev/tty", 5, 0},
    };
    for (size_t i = 0; i < sizeof nodes / sizeof nodes[0]; i++) {
        make_device(spawn, rootfd, nodes[i].path, S_IFCHR | 0666, makedev(nodes[i].major, nodes[i].minor), 0, 0);
    }
    static const struct {
        const char *name, *target;
    } links[] = {
        {"fd", "/proc/self/fd"}, {"stdin", "/proc/self/fd/0"}, {"stdout", "/proc/self/fd/1"},
        {"stderr", "/proc/self/fd/2"}, {"ptmx", "pts/ptmx"},
    };
    int dev = kvmrun_open_in_root(rootfd, "/dev", O_DIRECTORY);
    if (dev < 0) kvmrun_child_fail(spawn, "open /dev", "/dev", errno);
    for (size_t i = 0; i < sizeof links / sizeof links[0]; i++) {
        if (symlinkat(links[i].target, dev, links[i].name) < 0 && errno != EEXIST) kvmrun_child_fail(spawn, "symlink", links[i].name, errno);
    }
    close(dev);
}

static void remount_readonly(const struct kvmrun_spawn *spawn, const char *path) {
    unsigned long flags = MS_BIND | MS_REMOUNT | MS_RDONLY | mount_flags_of(path);
    if (mount(NULL, path, NULL, flags, NULL) < 0) kvmrun_child_fail(spawn, "remount read-only", path, errno);
}

void kvmrun_child_rootfs(const struct kvmrun_spawn *spawn) {
    umask(0);
    // Our copy of the agent's mounts: nothing done here may propagate back.
    unsigned long propagation = spawn->rootfs_propagation != 0 ? spawn->rootfs_propagation : (MS_REC | MS_PRIVATE);
    if (mount(NULL, "/", NULL, propagation, NULL) < 0) kvmrun_child_fail(spawn, "make / private", "/", errno);
    // pivot_root needs the new root to be a mount point.
    if (mount(spawn->rootfs, spawn->rootfs, NULL, MS_BIND | MS_REC, NULL) < 0) kvmrun_child_fail(spawn, "bind rootfs", spawn->rootfs, errno);
    int rootfd = open(spawn->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0) kvmrun_child_fail(spawn, "open rootfs", spawn->rootfs, errno);
    for (size_t i = 0; i < spawn->mount_count; i++) mount_one(spawn, rootfd, &spawn->mounts[i]);
    if (spawn->default_devices) default_devices(spawn, rootfd);
    for (size_t i = 0; i < spawn->device_count; i++) {
        const struct kvmrun_device *d = &spawn->devices[i];
        make_device(spawn, rootfd, d->path, d->mode, d->dev, d->uid, d->gid);
    }
    if (fchdir(rootfd) < 0) kvmrun_child_fail(spawn, "chdir rootfs", spawn->rootfs, errno);
    close(rootfd);
    // pivot_root(".", "."): the old root ends up on top of the new one; detach it (with every
    // mount of the agent's under it) and only the container's tree is left.
    if (syscall(SYS_pivot_root, ".", ".") < 0) kvmrun_child_fail(spawn, "pivot_root", spawn->rootfs, errno);
    if (mount(NULL, ".", NULL, MS_REC | MS_SLAVE, NULL) < 0) kvmrun_child_fail(spawn, "make old root a slave", "/", errno);
    if (umount2(".", MNT_DETACH) < 0) kvmrun_child_fail(spawn, "detach old root", "/", errno);
    if (chdir("/") < 0) kvmrun_child_fail(spawn, "chdir /", "/", errno);
    if (spawn->rootfs_readonly) remount_readonly(spawn, "/");
    for (size_t i = 0; i < spawn->masked_count; i++) {
        const char *path = spawn->masked_paths[i];
        struct stat info;
        if (stat(path, &info) < 0) {
            if (errno == ENOENT) continue;
            kvmrun_child_fail(spawn, "stat masked path", path, errno);
        }
        int failed = S_ISDIR(info.st_mode) ? mount("tmpfs", path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL)
                                           : mount("/dev/null", path, NULL, MS_BIND, NULL);
        if (failed < 0) kvmrun_child_fail(spawn, "mask path", path, errno);
    }
    for (size_t i = 0; i < spawn->readonly_count; i++) {
        const char *path = spawn->readonly_paths[i];
        if (mount(path, path, NULL, MS_BIND | MS_REC, NULL) < 0) {
            if (errno == ENOENT) continue;
            kvmrun_child_fail(spawn, "bind read-only path", path, errno);
        }
        remount_readonly(spawn, path);
    }
    if (spawn->hostname != NULL && sethostname(spawn->hostname, strlen(spawn->hostname)) < 0) kvmrun_child_fail(spawn, "sethostname", spawn->hostname, errno);
    for (size_t i = 0; i < spawn->sysctl_count; i++) {
        int fd = open(spawn->sysctl_paths[i], O_WRONLY | O_CLOEXEC);
        if (fd < 0) kvmrun_child_fail(spawn, "open sysctl", spawn->sysctl_paths[i], errno);
        size_t length = strlen(spawn->sysctl_values[i]);
        if (write(fd, spawn->sysctl_values[i], length) != (ssize_t)length) kvmrun_child_fail(spawn, "write sysctl", spawn->sysctl_paths[i], errno);
        close(fd);
    }
    umask(022);
}
