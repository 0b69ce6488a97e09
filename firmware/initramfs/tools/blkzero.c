// blkzero DEVICE OFFSET LENGTH [unmap]: zeroes a byte range of a block device with fallocate(2),
// which the kernel turns into WRITE_ZEROES requests: FALLOC_FL_ZERO_RANGE asks for them with
// "no unmap", FALLOC_FL_PUNCH_HOLE lets the device deallocate. (busybox has no such applet.)
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 4 || argc > 5 || (argc == 5 && strcmp(argv[4], "unmap") != 0)) {
        fprintf(stderr, "usage: blkzero DEVICE OFFSET LENGTH [unmap]\n");
        return 2;
    }
    long long offset = strtoll(argv[2], NULL, 0), length = strtoll(argv[3], NULL, 0);
    int fd = open(argv[1], O_WRONLY);
    if (fd < 0) {
        fprintf(stderr, "blkzero: open %s: %s\n", argv[1], strerror(errno));
        return 1;
    }
    int mode = FALLOC_FL_KEEP_SIZE | (argc == 5 ? FALLOC_FL_PUNCH_HOLE : FALLOC_FL_ZERO_RANGE);
    if (fallocate(fd, mode, offset, length) != 0) {
        fprintf(stderr, "blkzero: fallocate %s %lld+%lld: %s\n", argv[1], offset, length, strerror(errno));
        return 1;
    }
    return close(fd) == 0 ? 0 : 1;
}
