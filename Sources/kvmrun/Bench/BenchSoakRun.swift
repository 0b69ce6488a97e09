#if canImport(Glibc)
import Glibc
#endif
import CKVM
import Harness

/// The configuration of soak boot `index`: a cycle of eight.
struct SoakPlan {
    let index: Int
    var cpus: Int { index % 2 == 0 ? 1 : 2 }
    var devices: Bool { (index / 2) % 2 == 1 }
    var endsBySignal: Bool { (index / 4) % 2 == 1 }
    /// How long after the marker the SIGTERM comes (spread over 0–390 ms, so it lands in
    /// different guest activity).
    var signalDelayMilliseconds: Int { (index * 37) % 400 }

    var label: String {
        "[\(cpus) vCPU\(cpus == 1 ? "" : "s"), \(devices ? "devices" : "no devices"), \(endsBySignal ? "SIGTERM" : "reboot")]"
    }
}

/// How one soak boot ended.
enum SoakOutcome: CustomStringConvertible {
    case reached(milliseconds: Double)
    case faulted(String)
    case stalled(String)
    case error(String)

    var description: String {
        switch self {
        case let .reached(ms): "reached init in \(format(ms)) ms"
        case let .faulted(why): "FAULTED: \(why)"
        case let .stalled(why): "STALLED: \(why)"
        case let .error(why): "ERROR: \(why)"
        }
    }
}

struct SoakTally {
    let vmm: String
    var boots = 0, reached = 0, faulted = 0, stalled = 0, errors = 0

    mutating func add(_ outcome: SoakOutcome) {
        boots += 1
        switch outcome {
        case .reached: reached += 1
        case .faulted: faulted += 1
        case .stalled: stalled += 1
        case .error: errors += 1
        }
    }

    var summary: String {
        "soak: \(vmm) \(boots) boots, \(reached) reached init, \(faulted) faulted, \(stalled) stalled, \(errors) other errors"
    }
}

/// Runs one boot of either VMM and classifies it from its exit status, stderr and console.
struct SoakRunner {
    static let marker = "KVMRUN_INIT_OK"
    /// Console lines that mean the guest kernel itself failed.
    static let guestFailures = ["Kernel panic", "Oops", "BUG: ", "general protection fault", "double fault"]

    let plan: SoakPlan
    let timeout: Int
    let verbose: Bool

    func boot(executable: String, arguments: [String], vmm: String) -> SoakOutcome {
        let child: ChildProcess
        do {
            child = try ChildProcess(executable: executable, arguments: arguments)
        } catch {
            return .error("cannot start \(vmm): \(error)")
        }
        let outcome = follow(child, isQEMU: vmm == "qemu")
        if case .reached = outcome, !verbose { return outcome }
        if verbose, case .reached = outcome { print("  console tail: \(tail(child))") }
        return outcome
    }

    private func follow(_ child: ChildProcess, isQEMU: Bool) -> SoakOutcome {
        let timeoutMs = timeout * 1000
        guard let seen = child.waitForStdout(containing: Self.marker, timeoutMilliseconds: timeoutMs) else {
            if let status = child.waitForExit(timeoutMilliseconds: 0) {
                return ended(child, status: status, isQEMU: isQEMU, afterMarker: false)
            }
            let last = lastLine(child)
            stop(child)
            return .stalled("no \(Self.marker) within \(timeout) s; last console line: \(last)")
        }
        let bootMs = Double(seen - child.spawnedAt) / 1_000_000
        if plan.endsBySignal {
            if let status = child.waitForExit(timeoutMilliseconds: plan.signalDelayMilliseconds) {
                return ended(child, status: status, isQEMU: isQEMU, afterMarker: true)
            }
            child.signal(SIGTERM)
            guard let status = child.waitForExit(timeoutMilliseconds: timeoutMs) else {
                stop(child)
                return .stalled("the VMM did not exit within \(timeout) s of SIGTERM")
            }
            // kvmrun reports the signal (128 + 15); QEMU exits 0 after "terminating on signal 15".
            let expected: Int32 = isQEMU ? 0 : 128 + SIGTERM
            if status == expected { return .reached(milliseconds: bootMs) }
            return ended(child, status: status, isQEMU: isQEMU, afterMarker: true)
        }
        if isQEMU {
            // QEMU microvm has no i8042, so `reboot=k` does not end it: the guest's own
            // "Restarting system" line is the end of an orderly run.
            if child.waitForStdout(containing: "reboot: Restarting system", timeoutMilliseconds: timeoutMs) != nil {
                if child.waitForExit(timeoutMilliseconds: 3000) == nil { stop(child) }
                return .reached(milliseconds: bootMs)
            }
        }
        guard let status = child.waitForExit(timeoutMilliseconds: timeoutMs) else {
            let last = lastLine(child)
            stop(child)
            return .stalled("no end within \(timeout) s after the marker; last console line: \(last)")
        }
        if status == 0, !isQEMU || contains(child.stdoutText, "reboot: Restarting system") {
            return .reached(milliseconds: bootMs)
        }
        return ended(child, status: status, isQEMU: isQEMU, afterMarker: true)
    }

    /// Classifies a VMM that exited in a way other than the planned one.
    private func ended(_ child: ChildProcess, status: Int32, isQEMU: Bool, afterMarker: Bool) -> SoakOutcome {
        child.drain(timeoutMilliseconds: 1000)
        let stderr = String(decoding: child.stderrText, as: UTF8.self)
        let when = afterMarker ? "after the marker" : "before the marker"
        let detail = "exit \(status) \(when); stderr: \(stderr.suffix(300)); console tail: \(tail(child))"
        if stderr.contains("triple fault") || Self.guestFailures.contains(where: { contains(child.stdoutText, $0) }) {
            return .faulted(detail)
        }
        if !isQEMU, status == 1 { return .faulted(detail) }
        // QEMU with -no-reboot exits 0 on any reset; one without Linux's reboot line is a triple fault.
        if isQEMU, status == 0, !contains(child.stdoutText, "reboot: Restarting system") { return .faulted(detail) }
        return .error(detail)
    }

    private func stop(_ child: ChildProcess) {
        child.signal(SIGKILL)
        _ = child.waitForExit(timeoutMilliseconds: 5000)
        child.drain(timeoutMilliseconds: 500)
    }

    private func contains(_ bytes: [UInt8], _ text: String) -> Bool {
        firstRange(of: Array(text.utf8), in: bytes, from: 0) != nil
    }

    private func tail(_ child: ChildProcess) -> String {
        String(decoding: child.stdoutText.suffix(600), as: UTF8.self)
            .replacingCRLF()
    }

    private func lastLine(_ child: ChildProcess) -> String {
        let text = String(decoding: child.stdoutText.suffix(400), as: UTF8.self)
        let lines = text.split(whereSeparator: { $0 == "\n" || $0 == "\r\n" || $0 == "\r" })
        return lines.last.map(String.init) ?? "(none)"
    }
}

extension String {
    /// Console text on one line: CR/LF pairs and newlines as " | ".
    func replacingCRLF() -> String {
        split(whereSeparator: { $0 == "\n" || $0 == "\r\n" || $0 == "\r" }).joined(separator: " | ")
    }
}
