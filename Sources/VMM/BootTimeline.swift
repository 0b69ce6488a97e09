import CKVM
import Synchronization

/// Moments of a boot, in nanoseconds on the monotonic clock, recorded once each from whichever
/// thread reaches them first. Zero means "not reached".
public final class BootTimeline: Sendable {
    public enum Phase: Int, CaseIterable, Sendable {
        case processStart, kernelLoaded, firstRun, firstConsoleByte, bootTimer

        public var label: String {
            switch self {
            case .processStart: return "process_start"
            case .kernelLoaded: return "kernel_loaded"
            case .firstRun: return "first_kvm_run"
            case .firstConsoleByte: return "first_console_byte"
            case .bootTimer: return "boot_timer"
            }
        }
    }

    private let stamps: Mutex<[UInt64]>
    /// The process's CPU time (user + system, all threads) when `firstRun` was recorded.
    private let cpuAtFirstRun = Mutex<UInt64>(0)

    public init(processStart: UInt64 = kvmrun_process_start_ns()) {
        var initial = [UInt64](repeating: 0, count: Phase.allCases.count)
        initial[Phase.processStart.rawValue] = processStart == 0 ? kvmrun_monotonic_ns() : processStart
        stamps = Mutex(initial)
    }

    /// Records `phase` now unless it was recorded before. Returns whether this call recorded it.
    @discardableResult
    public func mark(_ phase: Phase, at time: UInt64 = kvmrun_monotonic_ns()) -> Bool {
        stamps.withLock { stamps in
            guard stamps[phase.rawValue] == 0 else { return false }
            stamps[phase.rawValue] = time
            return true
        }
    }

    public func time(of phase: Phase) -> UInt64 { stamps.withLock { $0[phase.rawValue] } }

    /// Records `firstRun` (once) together with the CPU time the process has used up to it:
    /// the VMM's set-up cost, less inflated by a loaded or emulated host than wall time.
    public func markFirstRun(at time: UInt64 = kvmrun_monotonic_ns(), cpu: () -> UInt64 = { kvmrun_process_cpu_ns() }) {
        guard stamps.withLock({ $0[Phase.firstRun.rawValue] }) == 0 else { return }
        let used = cpu()
        if mark(.firstRun, at: time) { cpuAtFirstRun.withLock { $0 = used } }
    }

    /// Milliseconds of CPU time (user + system) used before the first KVM_RUN, or nil.
    public var cpuMillisecondsToFirstRun: Double? {
        let used = cpuAtFirstRun.withLock { $0 }
        return used == 0 ? nil : Double(used) / 1_000_000
    }

    /// Milliseconds from process start to `phase`, or nil when not reached.
    public func millisecondsSinceStart(_ phase: Phase) -> Double? {
        let stamp = time(of: phase)
        guard stamp != 0 else { return nil }
        return Double(Int64(bitPattern: stamp &- time(of: .processStart))) / 1_000_000
    }

    /// One line: `boot-time boot_timer_ms=… kernel_loaded_ms=… first_kvm_run_ms=… first_console_byte_ms=…
    /// first_kvm_run_cpu_ms=… process_start_monotonic_ms=…` (times since process start; phases
    /// not reached are left out). The CPU time is user + system of all threads up to the first
    /// KVM_RUN; the process start on CLOCK_MONOTONIC lets a parent that timed the spawn on
    /// the same clock place these times on its own axis.
    public var report: String {
        var fields: [String] = []
        for phase in [Phase.bootTimer, .kernelLoaded, .firstRun, .firstConsoleByte] {
            if let ms = millisecondsSinceStart(phase) {
                fields.append("\(phase.label)_ms=\(formatMilliseconds(ms))")
            }
        }
        if let cpu = cpuMillisecondsToFirstRun { fields.append("first_kvm_run_cpu_ms=\(formatMilliseconds(cpu))") }
        fields.append("process_start_monotonic_ms=\(formatMilliseconds(Double(time(of: .processStart)) / 1_000_000))")
        return "boot-time " + fields.joined(separator: " ")
    }
}

/// Milliseconds with three decimals, without Foundation's formatting.
func formatMilliseconds(_ value: Double) -> String {
    let micros = Int64((value * 1000).rounded())
    let sign = micros < 0 ? "-" : ""
    let magnitude = micros.magnitude
    let fraction = String(magnitude % 1000)
    return "\(sign)\(magnitude / 1000).\(String(repeating: "0", count: 3 - fraction.count))\(fraction)"
}
