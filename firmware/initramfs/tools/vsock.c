// vsock: guest-side test tool for kvmrun's virtio-vsock (static; installed in /usr/bin).
//
//   vsock send PORT BYTES [SEED]     connect to CID 2:PORT, send BYTES of the pattern, shut the
//                                    write side, read to EOF; prints VSOCK_SENT bytes=N
//   vsock recv PORT BYTES [SEED]     connect to CID 2:PORT, read to EOF, check length and pattern
//   vsock refused PORT               connect to CID 2:PORT must fail (nobody listens on the host)
//   vsock listen PORT verify BYTES   accept one stream, read to EOF, check the pattern, answer
//                                    "VERIFIED <n>\n"; prints VSOCK_LISTENING port=PORT first
//   vsock listen PORT send BYTES     accept one stream, send BYTES of the pattern, close
//   vsock multi PORT STREAMS BYTES   STREAMS concurrent streams to CID 2:PORT, each sends BYTES
//                                    (seed = stream index) and checks that the host echoes them
//
// Pattern byte i of seed s: (i * 131 + s * 17 + (i >> 9)) & 0xff; the seed is the port unless
// given (multi: the stream index). Exit status 0 on success.
#include <errno.h>
#include <linux/vm_sockets.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static unsigned char pattern(unsigned long i, unsigned long seed) {
    return (unsigned char)((i * 131 + seed * 17 + (i >> 9)) & 0xff);
}

static int connect_host(unsigned port) {
    int fd = socket(AF_VSOCK, SOCK_STREAM, 0);
    if (fd < 0) { perror("vsock: socket"); return -1; }
    struct sockaddr_vm addr = { .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_HOST, .svm_port = port };
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
        fprintf(stderr, "vsock: connect to 2:%u: %s\n", port, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static int send_pattern(int fd, unsigned long bytes, unsigned long seed) {
    unsigned char buffer[16384];
    unsigned long sent = 0;
    while (sent < bytes) {
        size_t chunk = bytes - sent < sizeof buffer ? bytes - sent : sizeof buffer;
        for (size_t i = 0; i < chunk; i++) buffer[i] = pattern(sent + i, seed);
        size_t done = 0;
        while (done < chunk) {
            ssize_t n = write(fd, buffer + done, chunk - done);
            if (n < 0) { if (errno == EINTR) continue; perror("vsock: write"); return -1; }
            done += (size_t)n;
        }
        sent += chunk;
    }
    return 0;
}

// Reads to EOF; returns the byte count, or -1 on a read error or a pattern mismatch.
static long read_verify(int fd, unsigned long seed) {
    unsigned char buffer[16384];
    unsigned long total = 0;
    for (;;) {
        ssize_t n = read(fd, buffer, sizeof buffer);
        if (n < 0) { if (errno == EINTR) continue; perror("vsock: read"); return -1; }
        if (n == 0) return (long)total;
        for (ssize_t i = 0; i < n; i++) {
            if (buffer[i] != pattern(total + i, seed)) {
                fprintf(stderr, "vsock: mismatch at byte %lu (seed %lu): got %u want %u\n",
                        total + i, seed, buffer[i], pattern(total + i, seed));
                return -1;
            }
        }
        total += (unsigned long)n;
    }
}

static int do_send(unsigned port, unsigned long bytes, unsigned long seed) {
    int fd = connect_host(port);
    if (fd < 0 || send_pattern(fd, bytes, seed) < 0) return 1;
    shutdown(fd, SHUT_WR);
    char reply[256];
    ssize_t n, got = 0;
    while ((n = read(fd, reply + got, sizeof reply - 1 - got)) > 0) got += n;
    reply[got] = 0;
    printf("VSOCK_SENT bytes=%lu reply=%s\n", bytes, got ? reply : "-");
    close(fd);
    return 0;
}

static int do_recv(unsigned port, unsigned long bytes, unsigned long seed) {
    int fd = connect_host(port);
    if (fd < 0) return 1;
    long got = read_verify(fd, seed);
    close(fd);
    printf("VSOCK_RECEIVED bytes=%ld expected=%lu\n", got, bytes);
    return got == (long)bytes ? 0 : 1;
}

static int do_refused(unsigned port) {
    int fd = socket(AF_VSOCK, SOCK_STREAM, 0);
    struct sockaddr_vm addr = { .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_HOST, .svm_port = port };
    int result = connect(fd, (struct sockaddr *)&addr, sizeof addr);
    printf("VSOCK_REFUSED port=%u result=%d errno=%s\n", port, result, result ? strerror(errno) : "none");
    return result < 0 && errno == ECONNRESET ? 0 : 1;
}

static int do_listen(unsigned port, const char *mode, unsigned long bytes) {
    int server = socket(AF_VSOCK, SOCK_STREAM, 0);
    struct sockaddr_vm addr = { .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = port };
    if (server < 0 || bind(server, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(server, 8) < 0) {
        perror("vsock: listen");
        return 1;
    }
    printf("VSOCK_LISTENING port=%u\n", port);
    fflush(stdout);
    int fd = accept(server, NULL, NULL);
    if (fd < 0) { perror("vsock: accept"); return 1; }
    if (strcmp(mode, "send") == 0) {
        int failed = send_pattern(fd, bytes, port);
        close(fd);
        printf("VSOCK_SERVED port=%u bytes=%lu\n", port, failed ? 0 : bytes);
        return failed ? 1 : 0;
    }
    long got = read_verify(fd, port);
    char reply[64];
    int length = snprintf(reply, sizeof reply, "VERIFIED %ld\n", got);
    if (write(fd, reply, (size_t)length) != length) perror("vsock: write reply");
    close(fd);
    printf("VSOCK_VERIFIED port=%u bytes=%ld expected=%lu\n", port, got, bytes);
    return got == (long)bytes ? 0 : 1;
}

// One stream of `multi`: a writer process sends, this process reads the echo and checks it.
static int one_stream(unsigned port, unsigned long bytes, unsigned long seed) {
    int fd = connect_host(port);
    if (fd < 0) return 1;
    pid_t writer = fork();
    if (writer == 0) {
        int failed = send_pattern(fd, bytes, seed);
        shutdown(fd, SHUT_WR);
        _exit(failed ? 1 : 0);
    }
    long got = read_verify(fd, seed);
    int status = 1;
    waitpid(writer, &status, 0);
    close(fd);
    if (got != (long)bytes) fprintf(stderr, "vsock: stream %lu echoed %ld of %lu bytes\n", seed, got, bytes);
    return got == (long)bytes && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}

static int do_multi(unsigned port, int streams, unsigned long bytes) {
    for (int i = 0; i < streams; i++) {
        pid_t child = fork();
        if (child == 0) _exit(one_stream(port, bytes, (unsigned long)i));
        if (child < 0) { perror("vsock: fork"); return 1; }
    }
    int ok = 0, failed = 0, status;
    while (wait(&status) > 0) {
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0) ok++; else failed++;
    }
    printf("VSOCK_MULTI streams=%d ok=%d failed=%d bytes_each=%lu\n", streams, ok, failed, bytes);
    return ok == streams && failed == 0 ? 0 : 1;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc >= 4 && strcmp(argv[1], "send") == 0)
        return do_send((unsigned)atoi(argv[2]), strtoul(argv[3], NULL, 10), strtoul(argv[argc > 4 ? 4 : 2], NULL, 10));
    if (argc >= 4 && strcmp(argv[1], "recv") == 0)
        return do_recv((unsigned)atoi(argv[2]), strtoul(argv[3], NULL, 10), strtoul(argv[argc > 4 ? 4 : 2], NULL, 10));
    if (argc == 3 && strcmp(argv[1], "refused") == 0)
        return do_refused((unsigned)atoi(argv[2]));
    if (argc == 5 && strcmp(argv[1], "listen") == 0)
        return do_listen((unsigned)atoi(argv[2]), argv[3], strtoul(argv[4], NULL, 10));
    if (argc == 5 && strcmp(argv[1], "multi") == 0)
        return do_multi((unsigned)atoi(argv[2]), atoi(argv[3]), strtoul(argv[4], NULL, 10));
    fprintf(stderr, "usage: vsock send|recv PORT BYTES [SEED] | refused PORT | listen PORT verify|send BYTES"
                    " | multi PORT STREAMS BYTES\n");
    return 2;
}
