// See include/ctap.h.
#include "ctap.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

// <net/if.h> clashes with <linux/if.h>; declare the one function needed from it.
extern unsigned int if_nametoindex(const char *ifname);

const unsigned int KVMRUN_TUN_F_CSUM = TUN_F_CSUM;
const unsigned int KVMRUN_TUN_F_TSO4 = TUN_F_TSO4;
const unsigned int KVMRUN_TUN_F_TSO6 = TUN_F_TSO6;
const unsigned int KVMRUN_TUN_F_TSO_ECN = TUN_F_TSO_ECN;
const unsigned int KVMRUN_TUN_F_UFO = TUN_F_UFO;
const int KVMRUN_IFNAMSIZ = IFNAMSIZ;

static void copy_name(char *dest, const char *name) {
    strncpy(dest, name, IFNAMSIZ - 1);
    dest[IFNAMSIZ - 1] = 0;
}

int kvmrun_tap_open(const char *name, int exclusive) {
    int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return -1;
    struct ifreq request;
    memset(&request, 0, sizeof request);
    copy_name(request.ifr_name, name);
    request.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR | (exclusive ? IFF_TUN_EXCL : 0);
    if (ioctl(fd, TUNSETIFF, &request) < 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

int kvmrun_tap_set_vnet_header_size(int fd, int size) { return ioctl(fd, TUNSETVNETHDRSZ, &size); }

int kvmrun_tap_set_offload(int fd, unsigned int flags) { return ioctl(fd, TUNSETOFFLOAD, (unsigned long)flags); }

unsigned int kvmrun_if_index(const char *name) { return if_nametoindex(name); }

int kvmrun_if_set_up(const char *name) {
    int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (sock < 0) return -1;
    struct ifreq request;
    memset(&request, 0, sizeof request);
    copy_name(request.ifr_name, name);
    int result = ioctl(sock, SIOCGIFFLAGS, &request);
    if (result == 0) {
        request.ifr_flags |= IFF_UP;
        result = ioctl(sock, SIOCSIFFLAGS, &request);
    }
    int saved = errno;
    close(sock);
    errno = saved;
    return result;
}
