#include "cmemory.h"

uint16_t kvmrun_load_u16(const void *address) { return __atomic_load_n((const uint16_t *)address, __ATOMIC_RELAXED); }
uint32_t kvmrun_load_u32(const void *address) { return __atomic_load_n((const uint32_t *)address, __ATOMIC_RELAXED); }
uint64_t kvmrun_load_u64(const void *address) { return __atomic_load_n((const uint64_t *)address, __ATOMIC_RELAXED); }
void kvmrun_store_u16(void *address, uint16_t value) { __atomic_store_n((uint16_t *)address, value, __ATOMIC_RELAXED); }
void kvmrun_store_u32(void *address, uint32_t value) { __atomic_store_n((uint32_t *)address, value, __ATOMIC_RELAXED); }
void kvmrun_store_u64(void *address, uint64_t value) { __atomic_store_n((uint64_t *)address, value, __ATOMIC_RELAXED); }
