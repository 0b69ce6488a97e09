#if canImport(Glibc)
import Glibc
#endif
@testable import Runtime
import Testing

@Suite("CPU limits as vCPUs")
struct VcpuLimitTests {
    static let hostCPUs = max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN)))

    @Test("A quota over its period, rounded up, at least 1, at most the host's CPUs; none without a quota")
    func counts() {
        #expect(Runtime.vcpus(quota: nil, period: nil) == nil)
        #expect(Runtime.vcpus(quota: -1, period: 100_000) == nil, "-1 is runc's 'no limit'")
        #expect(Runtime.vcpus(quota: 0, period: 100_000) == nil)
        #expect(Runtime.vcpus(quota: 50_000, period: 100_000) == 1)
        #expect(Runtime.vcpus(quota: 100_000, period: nil) == 1, "the default period is 100 ms")
        #expect(Runtime.vcpus(quota: 150_000, period: 100_000) == min(2, Self.hostCPUs))
        #expect(Runtime.vcpus(quota: 1, period: 0) == 1, "a zero period is taken as 1 µs, not divided by")
    }

    @Test("Extreme quotas and periods do not trap")
    func extremes() {
        #expect(Runtime.vcpus(quota: Int64.max, period: 1) == Self.hostCPUs)
        #expect(Runtime.vcpus(quota: Int64.max, period: UInt64.max) == 1)
        #expect(Runtime.vcpus(quota: 1, period: UInt64.max) == 1)
    }
}
