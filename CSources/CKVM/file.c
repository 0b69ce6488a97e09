// Thin wrappers; see include/ckvm_file.h. No logic beyond argument plumbing.
#define _GNU_SOURCE
#include "ckvm_file.h"
#include <fcntl.h>
#include <linux/falloc.h>

const int KVMRUN_FALLOC_PUNCH_HOLE = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;

int kvmrun_fallocate(int fd, int mode, int64_t offset, int64_t length) {
    return fallocate(fd, mode, (off_t)offset, (off_t)length);
}
