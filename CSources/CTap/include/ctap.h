// C shim for TAP devices (/dev/net/tun): ioctl numbers and helpers. Filled in by the
// virtio-net work.
#ifndef KVMRUN_CTAP_H
#define KVMRUN_CTAP_H
#pragma clang assume_nonnull begin
#pragma clang assume_nonnull end
#endif
