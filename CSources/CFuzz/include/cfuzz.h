// libFuzzer's interface (compiler-rt FuzzerInterface.h) for the fuzz targets in Fuzz/. SwiftPM
// gives every executable a Swift main, so a target's main.swift (`runFuzzer()`) starts libFuzzer
// with LLVMFuzzerRunDriver, which libFuzzer defines, on LLVMFuzzerTestOneInput, which the
// target defines (`@_cdecl`). Only the fuzz build (KVMRUN_FUZZ=1, -sanitize=fuzzer) uses it.
// No logic here.
#ifndef KVMRUN_CFUZZ_H
#define KVMRUN_CFUZZ_H

#include <stddef.h>
#include <stdint.h>

#pragma clang assume_nonnull begin

typedef int (*kvmrun_fuzz_callback)(const uint8_t *_Nullable data, size_t size);

/// The target's test function: one input per call; returns 0.
int LLVMFuzzerTestOneInput(const uint8_t *_Nullable data, size_t size);

/// Runs libFuzzer with the process's arguments on `callback`; returns its exit status.
int LLVMFuzzerRunDriver(int *argc, char *_Nullable *_Nonnull *_Nonnull argv, kvmrun_fuzz_callback callback);

#pragma clang assume_nonnull end

#endif
