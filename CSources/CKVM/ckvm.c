// Thin wrappers; see include/ckvm.h. No logic beyond argument plumbing.
#define _GNU_SOURCE
#include "ckvm.h"
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <termios.h>
#include <sys/random.h>

int kvmrun_ioctl_ptr(int fd, unsigned long request, void *arg) { return ioctl(fd, request, arg); }

int kvmrun_ioctl_val(int fd, unsigned long request, unsigned long arg) { return ioctl(fd, request, arg); }

int kvmrun_eventfd(void) { return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK); }

int kvmrun_open(const char *path, int flags) { return open(path, flags); }

// The kvm_run page of the vCPU the calling thread runs (NULL on other threads). KVM's API
// documentation has the kick handler set immediate_exit itself: set from the vCPU's own thread,
// the store cannot race with the thread clearing it after KVM_RUN, so no kick is lost.
static __thread struct kvm_run *kvmrun_thread_run __attribute__((tls_model("initial-exec")));

static void kvmrun_kick(int signo) {
    (void)signo;
    struct kvm_run *run = kvmrun_thread_run;
    if (run) __atomic_store_n(&run->immediate_exit, 1, __ATOMIC_SEQ_CST);
}

void kvmrun_set_thread_kvm_run(struct kvm_run *run) { kvmrun_thread_run = run; }

int kvmrun_install_signal_handler(int signo, void (*handler)(int)) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;
    return sigaction(signo, &sa, NULL);
}

int kvmrun_install_kick_handler(int signo) { return kvmrun_install_signal_handler(signo, kvmrun_kick); }

int kvmrun_thread_sigmask_one(int how, int signo) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, signo);
    return pthread_sigmask(how, &set, NULL);
}

struct kvm_cpuid_entry2 *kvmrun_cpuid_entry(struct kvmrun_cpuid *cpuid, int index) {
    return &cpuid->entries[index];
}

struct kvm_msr_entry *kvmrun_msr_entry(struct kvmrun_msrs *msrs, int index) {
    return &msrs->entries[index];
}

uint64_t kvmrun_monotonic_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t kvmrun_start_ns;

// Runs when the executable is loaded, before Swift's main: the closest point to exec(2) that
// the process itself can observe (a static executable has no dynamic loading before it).
__attribute__((constructor)) static void kvmrun_record_start(void) { kvmrun_start_ns = kvmrun_monotonic_ns(); }

uint64_t kvmrun_process_start_ns(void) { return kvmrun_start_ns; }

int kvmrun_thread_set_name(const char *name) { return prctl(PR_SET_NAME, (unsigned long)name, 0, 0, 0); }

uint64_t kvmrun_process_cpu_ns(void) {
    struct timespec ts;
    if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) != 0) return 0;
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int kvmrun_epoll_create(void) { return epoll_create1(EPOLL_CLOEXEC); }

int kvmrun_epoll_ctl(int epfd, int fd, int modify, uint32_t events, uint64_t token) {
    struct epoll_event event = { .events = events, .data.u64 = token };
    return epoll_ctl(epfd, modify ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &event);
}

int kvmrun_epoll_del(int epfd, int fd) { return epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL); }

int kvmrun_epoll_wait(int epfd, uint64_t *tokens, uint32_t *events, int max, int timeout_ms) {
    struct epoll_event ready[64];
    if (max > 64) max = 64;
    int n = epoll_wait(epfd, ready, max, timeout_ms);
    for (int i = 0; i < n; i++) {
        tokens[i] = ready[i].data.u64;
        events[i] = ready[i].events;
    }
    return n;
}

int kvmrun_termination_signalfd(void) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0) return -1;
    return signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
}

int kvmrun_signalfd_read(int fd) {
    struct signalfd_siginfo info;
    ssize_t n = read(fd, &info, sizeof info);
    if (n < 0) return errno == EAGAIN ? 0 : -1;
    if (n != sizeof info) return 0;
    return (int)info.ssi_signo;
}

int kvmrun_kick_signal(void) { return SIGRTMIN; }

int kvmrun_pthread_kill(unsigned long thread, int signo) { return pthread_kill((pthread_t)thread, signo); }

static struct termios kvmrun_saved_termios;
static int kvmrun_termios_saved;

int kvmrun_terminal_raw(int fd) {
    struct termios mode;
    if (tcgetattr(fd, &mode) != 0) return -1;
    kvmrun_saved_termios = mode;
    kvmrun_termios_saved = 1;
    mode.c_iflag &= ~(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON);
    mode.c_lflag &= ~(ECHO | ECHONL | ICANON | IEXTEN);
    mode.c_cc[VMIN] = 1;
    mode.c_cc[VTIME] = 0;
    return tcsetattr(fd, TCSANOW, &mode);
}

void kvmrun_terminal_restore(int fd) {
    if (kvmrun_termios_saved) tcsetattr(fd, TCSANOW, &kvmrun_saved_termios);
}

uint8_t *kvmrun_run_mmio_data(struct kvm_run *run) { return run->mmio.data; }

void kvmrun_memory_fence(void) { __atomic_thread_fence(__ATOMIC_SEQ_CST); }

long kvmrun_getrandom(void *buffer, size_t length) { return (long)getrandom(buffer, length, 0); }

void kvmrun_stdout_line_buffered(void) { setvbuf(stdout, NULL, _IOLBF, 0); }
