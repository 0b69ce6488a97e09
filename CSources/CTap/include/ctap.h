// C shim for TAP devices (/dev/net/tun): ioctl flag values as constants and a few helpers that
// fill `struct ifreq`. No logic: callers decide what to create, attach or remove.
#ifndef KVMRUN_CTAP_H
#define KVMRUN_CTAP_H
#pragma clang assume_nonnull begin

/// TUNSETOFFLOAD flags: what the reader of the tap (the guest) accepts.
extern const unsigned int KVMRUN_TUN_F_CSUM;
extern const unsigned int KVMRUN_TUN_F_TSO4;
extern const unsigned int KVMRUN_TUN_F_TSO6;
extern const unsigned int KVMRUN_TUN_F_TSO_ECN;
extern const unsigned int KVMRUN_TUN_F_UFO;
/// IFNAMSIZ (16): interface names are at most 15 bytes.
extern const int KVMRUN_IFNAMSIZ;

/// Opens /dev/net/tun (O_RDWR | O_NONBLOCK | O_CLOEXEC) and attaches it with TUNSETIFF to the
/// tap `name` with IFF_TAP | IFF_NO_PI | IFF_VNET_HDR, adding IFF_TUN_EXCL when `exclusive`
/// (create a new interface, fail with EBUSY if one exists). Returns the fd, or -1 with errno
/// set (the fd is closed then).
int kvmrun_tap_open(const char *name, int exclusive);

/// TUNSETVNETHDRSZ: the size of the virtio-net header before each frame.
int kvmrun_tap_set_vnet_header_size(int fd, int size);

/// TUNSETOFFLOAD with KVMRUN_TUN_F_* flags.
int kvmrun_tap_set_offload(int fd, unsigned int flags);

/// if_nametoindex(3): 0 when no interface has that name.
unsigned int kvmrun_if_index(const char *name);

/// Sets IFF_UP on interface `name` (SIOCGIFFLAGS, SIOCSIFFLAGS on an AF_INET datagram socket).
/// 0, or -1 with errno set.
int kvmrun_if_set_up(const char *name);

#pragma clang assume_nonnull end
#endif
