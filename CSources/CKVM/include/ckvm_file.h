// C shim for block-device backends: fallocate(2) and its mode flags, which Swift's Glibc module
// does not export (they need _GNU_SOURCE and <linux/falloc.h>). No logic lives here.
#ifndef KVMRUN_CKVM_FILE_H
#define KVMRUN_CKVM_FILE_H

#include <stdint.h>

#pragma clang assume_nonnull begin

/// FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE: deallocate a range, reads then return zeros.
extern const int KVMRUN_FALLOC_PUNCH_HOLE;

/// fallocate(2): 0, or -1 with errno.
int kvmrun_fallocate(int fd, int mode, int64_t offset, int64_t length);

#pragma clang assume_nonnull end
#endif
