// C shim for guest memory the guest may be reading or writing at the same moment (virtqueue
// indexes and event fields): one 16-, 32- or 64-bit access each, single-copy atomic (relaxed
// order; callers fence where the virtio spec needs one). No logic.
#ifndef KVMRUN_CMEMORY_H
#define KVMRUN_CMEMORY_H
#include <stdint.h>
#pragma clang assume_nonnull begin

/// Reads the naturally aligned value at `address` in one access.
uint16_t kvmrun_load_u16(const void *address);
uint32_t kvmrun_load_u32(const void *address);
uint64_t kvmrun_load_u64(const void *address);
/// Writes `value` at the naturally aligned `address` in one access.
void kvmrun_store_u16(void *address, uint16_t value);
void kvmrun_store_u32(void *address, uint32_t value);
void kvmrun_store_u64(void *address, uint64_t value);

#pragma clang assume_nonnull end
#endif
