// Limits and credentials, in the child (see include/kvmrun_spawn.h): rlimits, oom_score_adj,
// the capability bounding set, groups, gid, uid, capability sets, ambient capabilities and
// no_new_privs, in the order runc applies them. System calls and stack buffers only.
#define _GNU_SOURCE
#include "child.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

static const char *const rlimit_names[] = {
    "RLIMIT_CPU", "RLIMIT_FSIZE", "RLIMIT_DATA", "RLIMIT_STACK", "RLIMIT_CORE", "RLIMIT_RSS",
    "RLIMIT_NPROC", "RLIMIT_NOFILE", "RLIMIT_MEMLOCK", "RLIMIT_AS", "RLIMIT_LOCKS",
    "RLIMIT_SIGPENDING", "RLIMIT_MSGQUEUE", "RLIMIT_NICE", "RLIMIT_RTPRIO", "RLIMIT_RTTIME",
};

void kvmrun_child_limits(const struct kvmrun_spawn *spawn) {
    for (size_t i = 0; i < spawn->rlimit_count; i++) {
        const struct kvmrun_rlimit *limit = &spawn->rlimits[i];
        struct rlimit value = {.rlim_cur = limit->soft, .rlim_max = limit->hard};
        const char *name = limit->resource >= 0 && (size_t)limit->resource < sizeof rlimit_names / sizeof rlimit_names[0]
                               ? rlimit_names[limit->resource] : "RLIMIT_?";
        if (setrlimit((__rlimit_resource_t)limit->resource, &value) < 0) kvmrun_child_fail(spawn, "setrlimit", name, errno);
    }
    if (spawn->set_oom_score_adj) {
        char text[16];
        int value = spawn->oom_score_adj;
        size_t n = 0;
        char digits[12];
        int negative = value < 0;
        unsigned magnitude = negative ? (unsigned)(-(long)value) : (unsigned)value;
        size_t count = 0;
        do {
            digits[count++] = (char)('0' + magnitude % 10);
            magnitude /= 10;
        } while (magnitude > 0 && count < sizeof digits);
        if (negative) text[n++] = '-';
        while (count > 0) text[n++] = digits[--count];
        int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
        if (fd < 0 || write(fd, text, n) != (ssize_t)n) kvmrun_child_fail(spawn, "write oom_score_adj", "/proc/self/oom_score_adj", errno);
        close(fd);
    }
}

void kvmrun_child_credentials(const struct kvmrun_spawn *spawn) {
    if (spawn->set_capabilities) {
        // The bounding set can only shrink, and needs CAP_SETPCAP: before giving up root.
        for (int cap = 0; cap <= spawn->cap_last && cap < 64; cap++) {
            if ((spawn->cap_bounding & (1ULL << cap)) == 0 && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL) {
                kvmrun_child_fail(spawn, "drop bounding capability", NULL, errno);
            }
        }
    }
    // Raw system calls: glibc's setgroups/setresgid/setresuid would try to change every thread
    // of the parent (the "setxid" broadcast) and wait forever for threads the child lacks.
    if (syscall(SYS_setgroups, spawn->group_count, spawn->groups) < 0) kvmrun_child_fail(spawn, "setgroups", NULL, errno);
    if (syscall(SYS_setresgid, spawn->gid, spawn->gid, spawn->gid) < 0) kvmrun_child_fail(spawn, "setgid", NULL, errno);
    if (spawn->set_capabilities && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0) kvmrun_child_fail(spawn, "keep capabilities", NULL, errno);
    if (syscall(SYS_setresuid, spawn->uid, spawn->uid, spawn->uid) < 0) kvmrun_child_fail(spawn, "setuid", NULL, errno);
    if (spawn->set_capabilities) {
        if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0) kvmrun_child_fail(spawn, "keep capabilities", NULL, errno);
        struct __user_cap_header_struct header = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
        struct __user_cap_data_struct data[2];
        memset(data, 0, sizeof data);
        for (int half = 0; half < 2; half++) {
            data[half].effective = (uint32_t)(spawn->cap_effective >> (32 * half));
            data[half].permitted = (uint32_t)(spawn->cap_permitted >> (32 * half));
            data[half].inheritable = (uint32_t)(spawn->cap_inheritable >> (32 * half));
        }
        if (syscall(SYS_capset, &header, data) < 0) kvmrun_child_fail(spawn, "capset", NULL, errno);
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL) kvmrun_child_fail(spawn, "clear ambient capabilities", NULL, errno);
        for (int cap = 0; cap <= spawn->cap_last && cap < 64; cap++) {
            if ((spawn->cap_ambient & (1ULL << cap)) != 0 && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) < 0) {
                kvmrun_child_fail(spawn, "raise ambient capability", NULL, errno);
            }
        }
    }
    if (spawn->no_new_privileges && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) kvmrun_child_fail(spawn, "no_new_privs", NULL, errno);
}
