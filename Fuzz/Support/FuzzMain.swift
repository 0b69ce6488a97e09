#if canImport(Glibc)
import Glibc
#endif
import CFuzz

/// A fuzz target's main: runs libFuzzer (its usual command line: corpus directories, -runs=,
/// -max_total_time=, a crash file to replay) on the target's `LLVMFuzzerTestOneInput`, then
/// exits with libFuzzer's status. The test function gets each input and returns 0; a thrown
/// Swift error is the input's rejection, never a finding, so it catches them all.
public func runFuzzer() -> Never {
    var argc = CommandLine.argc
    var argv = CommandLine.unsafeArgv
    exit(LLVMFuzzerRunDriver(&argc, &argv, LLVMFuzzerTestOneInput))
}
