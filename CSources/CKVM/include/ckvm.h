// C shim over <linux/kvm.h> for kvmrun.
//
// Swift cannot import the _IOW-style ioctl macros nor call variadic ioctl(2), so this header
// exports the request numbers as constants and wraps ioctl with fixed signatures. The KVM
// structures with flexible array members (kvm_cpuid2, kvm_msrs) get fixed-capacity wrappers.
// No logic lives here.
#ifndef KVMRUN_CKVM_H
#define KVMRUN_CKVM_H

#include "ckvm_file.h"
#include <linux/kvm.h>
#include <stdint.h>
#include <stddef.h>
#include <signal.h>

#pragma clang assume_nonnull begin

// MARK: ioctl request numbers (all of them in one table)
static const unsigned long KVMRUN_KVM_GET_API_VERSION = KVM_GET_API_VERSION;
static const unsigned long KVMRUN_KVM_CREATE_VM = KVM_CREATE_VM;
static const unsigned long KVMRUN_KVM_CHECK_EXTENSION = KVM_CHECK_EXTENSION;
static const unsigned long KVMRUN_KVM_GET_VCPU_MMAP_SIZE = KVM_GET_VCPU_MMAP_SIZE;
static const unsigned long KVMRUN_KVM_GET_SUPPORTED_CPUID = KVM_GET_SUPPORTED_CPUID;
static const unsigned long KVMRUN_KVM_CREATE_VCPU = KVM_CREATE_VCPU;
static const unsigned long KVMRUN_KVM_SET_USER_MEMORY_REGION = KVM_SET_USER_MEMORY_REGION;
static const unsigned long KVMRUN_KVM_SET_TSS_ADDR = KVM_SET_TSS_ADDR;
static const unsigned long KVMRUN_KVM_SET_IDENTITY_MAP_ADDR = KVM_SET_IDENTITY_MAP_ADDR;
static const unsigned long KVMRUN_KVM_CREATE_IRQCHIP = KVM_CREATE_IRQCHIP;
static const unsigned long KVMRUN_KVM_CREATE_PIT2 = KVM_CREATE_PIT2;
static const unsigned long KVMRUN_KVM_IRQ_LINE = KVM_IRQ_LINE;
static const unsigned long KVMRUN_KVM_IRQFD = KVM_IRQFD;
static const unsigned long KVMRUN_KVM_IOEVENTFD = KVM_IOEVENTFD;
static const unsigned long KVMRUN_KVM_RUN = KVM_RUN;
static const unsigned long KVMRUN_KVM_GET_REGS = KVM_GET_REGS;
static const unsigned long KVMRUN_KVM_SET_REGS = KVM_SET_REGS;
static const unsigned long KVMRUN_KVM_GET_SREGS = KVM_GET_SREGS;
static const unsigned long KVMRUN_KVM_SET_SREGS = KVM_SET_SREGS;
static const unsigned long KVMRUN_KVM_SET_MSRS = KVM_SET_MSRS;
static const unsigned long KVMRUN_KVM_SET_FPU = KVM_SET_FPU;
static const unsigned long KVMRUN_KVM_GET_LAPIC = KVM_GET_LAPIC;
static const unsigned long KVMRUN_KVM_SET_LAPIC = KVM_SET_LAPIC;
static const unsigned long KVMRUN_KVM_SET_CPUID2 = KVM_SET_CPUID2;
static const unsigned long KVMRUN_KVM_GET_MP_STATE = KVM_GET_MP_STATE;

// MARK: capabilities kvmrun requires or uses
static const int KVMRUN_CAP_IRQCHIP = KVM_CAP_IRQCHIP;
static const int KVMRUN_CAP_USER_MEMORY = KVM_CAP_USER_MEMORY;
static const int KVMRUN_CAP_SET_TSS_ADDR = KVM_CAP_SET_TSS_ADDR;
static const int KVMRUN_CAP_EXT_CPUID = KVM_CAP_EXT_CPUID;
static const int KVMRUN_CAP_PIT2 = KVM_CAP_PIT2;
static const int KVMRUN_CAP_IRQFD = KVM_CAP_IRQFD;
static const int KVMRUN_CAP_IOEVENTFD = KVM_CAP_IOEVENTFD;
static const int KVMRUN_CAP_IMMEDIATE_EXIT = KVM_CAP_IMMEDIATE_EXIT;
static const int KVMRUN_CAP_NR_VCPUS = KVM_CAP_NR_VCPUS;
static const int KVMRUN_CAP_MAX_VCPUS = KVM_CAP_MAX_VCPUS;
static const int KVMRUN_CAP_NR_MEMSLOTS = KVM_CAP_NR_MEMSLOTS;
static const int KVMRUN_CAP_TSC_DEADLINE_TIMER = KVM_CAP_TSC_DEADLINE_TIMER;

// MARK: fixed-capacity wrappers for flexible-array structures
// The kernel's header struct ends in a flexible array; our entries array is that array's storage
// (the layout KVM_GET/SET_CPUID2 and KVM_GET/SET_MSRS expect), a GNU extension clang accepts.
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wgnu-variable-sized-type-not-at-end"
#define KVMRUN_MAX_CPUID_ENTRIES 256
struct kvmrun_cpuid {
    struct kvm_cpuid2 header;
    struct kvm_cpuid_entry2 entries[KVMRUN_MAX_CPUID_ENTRIES];
};
static const int KVMRUN_MAX_CPUID = KVMRUN_MAX_CPUID_ENTRIES;

#define KVMRUN_MAX_MSR_ENTRIES 32
struct kvmrun_msrs {
    struct kvm_msrs header;
    struct kvm_msr_entry entries[KVMRUN_MAX_MSR_ENTRIES];
};
static const int KVMRUN_MAX_MSRS = KVMRUN_MAX_MSR_ENTRIES;
#pragma clang diagnostic pop

// MARK: functions

/// ioctl(2) with a pointer argument. Returns ioctl's result; errno is left for the caller.
int kvmrun_ioctl_ptr(int fd, unsigned long request, void *_Nullable arg);
/// ioctl(2) with an integer argument.
int kvmrun_ioctl_val(int fd, unsigned long request, unsigned long arg);
/// open(2) without the variadic mode argument.
int kvmrun_open(const char *path, int flags);
/// Installs the kick handler for `signo` (SA_RESTART off): it sets immediate_exit in the kvm_run
/// of the receiving thread's vCPU (see kvmrun_set_thread_kvm_run), so a KVM_RUN in progress
/// returns EINTR and the next one returns at once. Returns 0 or -1 with errno set.
int kvmrun_install_kick_handler(int signo);
/// Tells the kick handler which kvm_run the calling thread runs (NULL: none). A vCPU thread
/// sets it before its first KVM_RUN and clears it before the mapping can go away.
void kvmrun_set_thread_kvm_run(struct kvm_run *_Nullable run);
/// Installs `handler` for `signo` (SA_RESTART off). Returns 0 or -1 with errno set.
int kvmrun_install_signal_handler(int signo, void (*handler)(int));
/// Blocks (how = SIG_BLOCK) or unblocks (SIG_UNBLOCK) one signal in the calling thread.
int kvmrun_thread_sigmask_one(int how, int signo);
/// Entry `index` of a cpuid wrapper. The caller keeps index < KVMRUN_MAX_CPUID.
struct kvm_cpuid_entry2 *kvmrun_cpuid_entry(struct kvmrun_cpuid *cpuid, int index);
/// Entry `index` of an msrs wrapper. The caller keeps index < KVMRUN_MAX_MSRS.
struct kvm_msr_entry *kvmrun_msr_entry(struct kvmrun_msrs *msrs, int index);
/// eventfd(2) with EFD_CLOEXEC | EFD_NONBLOCK, counter 0.
int kvmrun_eventfd(void);
/// epoll_create1(EPOLL_CLOEXEC).
int kvmrun_epoll_create(void);
/// epoll_ctl(ADD or MOD when `modify`) of `fd` for `events` (EPOLLIN = 1, EPOLLOUT = 4), carrying
/// `token` back from kvmrun_epoll_wait.
int kvmrun_epoll_ctl(int epfd, int fd, int modify, uint32_t events, uint64_t token);
/// epoll_ctl(DEL).
int kvmrun_epoll_del(int epfd, int fd);
/// epoll_wait into parallel arrays of at most `max` tokens and event masks.
int kvmrun_epoll_wait(int epfd, uint64_t *tokens, uint32_t *events, int max, int timeout_ms);
/// Blocks SIGINT, SIGTERM and SIGHUP in the calling thread (threads created later inherit
/// that) and returns a signalfd (CLOEXEC, NONBLOCK) that reads them.
int kvmrun_termination_signalfd(void);
/// Reads one pending signal from a signalfd: its number, 0 if none, -1 with errno on error.
int kvmrun_signalfd_read(int fd);
/// The real-time signal used to kick vCPU threads out of KVM_RUN (SIGRTMIN).
int kvmrun_kick_signal(void);
/// pthread_kill(pthread_self-captured id, signo).
int kvmrun_pthread_kill(unsigned long thread, int signo);
/// Puts a terminal into raw input mode (no echo, no line editing) keeping ISIG so Ctrl-C
/// still stops the VMM. Saves the previous mode for kvmrun_terminal_restore. 0 or -1.
int kvmrun_terminal_raw(int fd);
/// Restores what kvmrun_terminal_raw saved (no-op if it was never called).
void kvmrun_terminal_restore(int fd);
/// The 8 data bytes of an MMIO exit inside the kvm_run mapping (Swift sees the anonymous union
/// member only as a copy, so the address comes from here).
uint8_t *kvmrun_run_mmio_data(struct kvm_run *run);
/// getrandom(2) with flags 0: returns bytes written or -1 with errno.
long kvmrun_getrandom(void *buffer, size_t length);
/// Makes stdout line-buffered (progress output through pipes).
void kvmrun_stdout_line_buffered(void);
/// A full memory fence (for publishing virtqueue entries to the guest in order).
void kvmrun_memory_fence(void);
/// Monotonic clock in nanoseconds.
uint64_t kvmrun_monotonic_ns(void);
/// Monotonic time, in nanoseconds, at which the executable's constructors ran (process start).
uint64_t kvmrun_process_start_ns(void);
/// CPU time (user + system, all threads) this process has used so far, in nanoseconds
/// (CLOCK_PROCESS_CPUTIME_ID); 0 if the clock cannot be read.
uint64_t kvmrun_process_cpu_ns(void);
/// Names the calling thread (prctl PR_SET_NAME; at most 15 bytes are kept). 0 or -1.
int kvmrun_thread_set_name(const char *name);

#pragma clang assume_nonnull end
#endif
