// C shim for socket calls Swift's Glibc module does not export (they need _GNU_SOURCE).
// No logic.
#ifndef KVMRUN_CSOCKET_H
#define KVMRUN_CSOCKET_H
#pragma clang assume_nonnull begin

/// accept4(listener, NULL, NULL, SOCK_CLOEXEC): the accepted fd is close-on-exec from the
/// start, so a child forked meanwhile by another thread cannot inherit it. -1 with errno set.
int kvmrun_accept_cloexec(int listener);

#pragma clang assume_nonnull end
#endif
