/* iobench: guest side of `kvmrun bench io`. Prints one "IOBENCH <name>_mibps=<x>" line per
 * measurement, timed with CLOCK_MONOTONIC inside the guest.
 *
 *   iobench blk-write DEVICE MIB   sequential O_DIRECT writes of 1 MiB, then fsync
 *   iobench blk-read  DEVICE MIB   sequential O_DIRECT reads of 1 MiB
 *   iobench tcp-send  IPV4 PORT MIB  connect, send MIB, half-close, wait for the peer's close
 *   iobench tcp-recv  IPV4 PORT MIB  connect, read until EOF (expects MIB), report the rate
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (1 << 20)

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int fail(const char *what) {
    fprintf(stderr, "iobench: %s: %s\n", what, strerror(errno));
    return 1;
}

static void report(const char *name, long mib, double seconds) {
    printf("IOBENCH %s_mibps=%.1f mib=%ld seconds=%.3f\n", name, seconds > 0 ? mib / seconds : 0.0, mib, seconds);
    fflush(stdout);
}

static int blk(int writing, const char *device, long mib, char *buffer) {
    int fd = open(device, (writing ? O_WRONLY : O_RDONLY) | O_DIRECT);
    if (fd < 0) return fail(device);
    double start = now();
    for (long i = 0; i < mib; i++) {
        ssize_t n = writing ? write(fd, buffer, CHUNK) : read(fd, buffer, CHUNK);
        if (n != CHUNK) { close(fd); return fail(writing ? "write" : "read"); }
    }
    if (writing && fsync(fd) != 0) { close(fd); return fail("fsync"); }
    report(writing ? "blk_write" : "blk_read", mib, now() - start);
    close(fd);
    return 0;
}

static int tcp(int sending, const char *address, int port, long mib, char *buffer) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return fail("socket");
    struct sockaddr_in peer = { .sin_family = AF_INET, .sin_port = htons(port) };
    if (inet_pton(AF_INET, address, &peer.sin_addr) != 1) { fprintf(stderr, "iobench: bad address %s\n", address); return 1; }
    /* The host side may still be starting: retry for a few seconds. */
    int connected = -1;
    for (int attempt = 0; attempt < 100 && connected != 0; attempt++) {
        connected = connect(fd, (struct sockaddr *)&peer, sizeof peer);
        if (connected != 0) {
            close(fd);
            usleep(100000);
            fd = socket(AF_INET, SOCK_STREAM, 0);
            if (fd < 0) return fail("socket");
        }
    }
    if (connected != 0) return fail("connect");
    double start = now();
    long long total = 0, expected = (long long)mib * CHUNK;
    if (sending) {
        while (total < expected) {
            ssize_t n = write(fd, buffer, CHUNK);
            if (n <= 0) { close(fd); return fail("send"); }
            total += n;
        }
        shutdown(fd, SHUT_WR);
        while (read(fd, buffer, CHUNK) > 0) {} /* the host closes once it has read everything */
    } else {
        ssize_t n;
        while ((n = read(fd, buffer, CHUNK)) > 0) total += n;
        if (n < 0) { close(fd); return fail("receive"); }
        if (total != expected) { fprintf(stderr, "iobench: received %lld bytes, expected %lld\n", total, expected); close(fd); return 1; }
    }
    report(sending ? "tcp_guest_to_host" : "tcp_host_to_guest", mib, now() - start);
    close(fd);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: iobench blk-write|blk-read DEVICE MIB | tcp-send|tcp-recv IPV4 PORT MIB\n");
        return 2;
    }
    char *buffer = aligned_alloc(4096, CHUNK);
    if (!buffer) return fail("aligned_alloc");
    for (int i = 0; i < CHUNK; i++) buffer[i] = (char)(i * 31 + 7);
    const char *mode = argv[1];
    if (!strcmp(mode, "blk-write") || !strcmp(mode, "blk-read"))
        return blk(mode[4] == 'w', argv[2], atol(argv[3]), buffer);
    if ((!strcmp(mode, "tcp-send") || !strcmp(mode, "tcp-recv")) && argc >= 5)
        return tcp(mode[4] == 's', argv[2], atoi(argv[3]), atol(argv[4]), buffer);
    fprintf(stderr, "iobench: unknown mode %s\n", mode);
    return 2;
}
