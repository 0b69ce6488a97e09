// One boot of `kvmrun bench boot` and the series of them per VMM: what was measured, and how
// each phase is derived from it (pure code, unit-tested).

/// What one boot measured. Times in milliseconds; nil when not measured.
struct Sample {
    /// Spawn → the init marker line read from the console (host clock).
    var bootToInit: Double?
    /// Spawn → first KVM_RUN (kvmrun's boot-time line; QEMU's cannot be seen without tracing).
    var firstRun: Double?
    /// Spawn → the guest's boot-timer write (kvmrun only).
    var bootTimer: Double?
    /// CPU time (user + system, all threads) the VMM used before its first KVM_RUN (kvmrun only).
    var setupCPU: Double?
    /// CPU time of the VMM's threads other than vCPU threads, read when the marker arrived
    /// (both VMMs, the same way: set-up plus what the event loop did during the boot).
    var vmmThreadsCPU: Double?
    /// Kernel-clock stamps (guest, ms since the kernel's clock zero) of "Run /init as init
    /// process" and of the init's marker.
    var guestRunInit: Double?
    var guestMarker: Double?
    /// kvm-clock when the guest's clock started, in ms: KVM counts it from the VM's creation
    /// (KVM_CREATE_VM), and neither VMM sets it, so this is VM creation → guest clock zero.
    var vmCreatedToClockZero: Double?
    var residentMiB: Double?
    var proportionalMiB: Double?
    var anonymousMiB: Double?
    /// The same, read again --settle seconds after the marker (the guest idle meanwhile).
    var settledResidentMiB: Double?
    var settledProportionalMiB: Double?
    /// The guest's slowest initcalls (with --guest-initcalls): name → microseconds.
    var initcalls: [String: Double] = [:]
    var error: String?
    /// Something worth reading next to the figures (why a phase is missing).
    var note: String?

    /// Spawn → the guest kernel's clock zero, derived on the host's axis: the marker's arrival
    /// less the marker's guest stamp. It holds the VMM's set-up and the kernel's first steps
    /// before its clock starts (the clock starts when kvm-clock is set up, early in setup_arch).
    var guestClockZero: Double? {
        guard let bootToInit, let guestMarker else { return nil }
        return bootToInit - guestMarker
    }

    /// Spawn → KVM_CREATE_VM, derived the same way for both VMMs: guest clock zero on the host's
    /// axis less kvm-clock's age at that moment.
    var vmCreated: Double? {
        guard let guestClockZero, let vmCreatedToClockZero else { return nil }
        return guestClockZero - vmCreatedToClockZero
    }

    /// Guest clock zero → "Run /init" (guest clock).
    var kernelToInit: Double? { guestRunInit }

    /// "Run /init" → marker (guest clock): the init script until it prints the marker.
    var initToMarker: Double? {
        guard let guestRunInit, let guestMarker else { return nil }
        return guestMarker - guestRunInit
    }

    /// First KVM_RUN → guest clock zero (kvmrun only): the kernel's steps before its clock.
    var entryToClockZero: Double? {
        guard let firstRun, let guestClockZero else { return nil }
        return guestClockZero - firstRun
    }

    /// Reads kvmrun's `boot-time …` line (stderr): first KVM_RUN and boot timer on the spawn's
    /// axis (the line's times count from the process's own start, whose monotonic time it
    /// gives), and the CPU time to the first KVM_RUN.
    mutating func parseBootTime(_ line: Substring, spawnedAtMilliseconds spawn: Double) {
        let start = field("process_start_monotonic_ms", in: line).map { $0 - spawn } ?? 0
        firstRun = field("first_kvm_run_ms", in: line).map { $0 + start }
        bootTimer = field("boot_timer_ms", in: line).map { $0 + start }
        setupCPU = field("first_kvm_run_cpu_ms", in: line)
    }

    /// Reads the guest's `KVMRUN_PHASES run_init=S marker=S` line (seconds, kernel clock) and
    /// its `KVMRUN_INITCALL usecs name` lines.
    mutating func parseGuestLines(_ console: String) {
        for line in console.split(whereSeparator: \.isNewline) {
            let text = line.drop { $0 != "K" }
            if text.hasPrefix("KVMRUN_PHASES ") {
                guestRunInit = field("run_init", in: text).map { $0 * 1000 }
                guestMarker = field("marker", in: text).map { $0 * 1000 }
                vmCreatedToClockZero = field("vm_clock_ns", in: text).map { $0 / 1_000_000 }
            } else if text.hasPrefix("KVMRUN_INITCALL ") {
                let parts = text.split(separator: " ")
                guard parts.count >= 3, let micros = Double(parts[1]) else { continue }
                // "name+0x0/0x40" → "name"
                let name = String(parts[2].prefix { $0 != "+" && $0 != "\r" })
                initcalls[name] = max(initcalls[name] ?? 0, micros)
            }
        }
    }

    var summary: String {
        if let error { return "FAILED: \(error)" }
        var parts = ["boot-to-init \(format(bootToInit))ms"]
        if let firstRun { parts.append("first KVM_RUN \(format(firstRun))ms") }
        if let setupCPU { parts.append("set-up CPU \(format(setupCPU))ms") }
        if let vmCreated { parts.append("KVM_CREATE_VM \(format(vmCreated))ms") }
        if let guestClockZero { parts.append("guest clock zero \(format(guestClockZero))ms") }
        if let kernelToInit { parts.append("kernel→/init \(format(kernelToInit))ms") }
        if let initToMarker { parts.append("/init→marker \(format(initToMarker))ms") }
        parts.append("VMM threads CPU \(format(vmmThreadsCPU))ms")
        parts.append("RSS \(format(residentMiB))MiB PSS \(format(proportionalMiB))MiB anon \(format(anonymousMiB))MiB")
        if let settledResidentMiB { parts.append("settled RSS \(format(settledResidentMiB))MiB PSS \(format(settledProportionalMiB))MiB") }
        if let note { parts.append(note) }
        return parts.joined(separator: ", ")
    }
}

struct Series {
    let name: String
    var samples: [Sample] = []
    var failures: Int { samples.filter { $0.error != nil }.count }
    var completed: [Sample] { samples.filter { $0.error == nil } }

    mutating func add(_ sample: Sample) { samples.append(sample) }

    func values(_ key: KeyPath<Sample, Double?>) -> [Double] { completed.compactMap { $0[keyPath: key] } }

    func median(_ key: KeyPath<Sample, Double?>) -> Double? { kvmrun.median(values(key)) }

    func line(_ key: KeyPath<Sample, Double?>) -> String {
        let list = values(key).sorted()
        guard let low = list.first, let high = list.last, let middle = kvmrun.median(list) else {
            return "  \(name.padding(7)) n/a"
        }
        return "  \(name.padding(7)) min \(format(low))  median \(format(middle))  max \(format(high))  (n=\(list.count))"
    }

    /// The initcalls with the largest median time over the runs that reported them.
    func slowestInitcalls(_ count: Int) -> [(name: String, micros: Double)] {
        var all: [String: [Double]] = [:]
        for sample in completed { for (name, micros) in sample.initcalls { all[name, default: []].append(micros) } }
        let medians = all.compactMap { name, values in kvmrun.median(values).map { (name: name, micros: $0) } }
        return Array(medians.sorted { $0.micros > $1.micros }.prefix(count))
    }
}

func median(_ values: [Double]) -> Double? {
    let sorted = values.sorted()
    guard !sorted.isEmpty else { return nil }
    let middle = sorted.count / 2
    return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}

func format(_ value: Double?, digits: Int = 1) -> String {
    guard let value else { return "n/a" }
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    let scaled = Int64((value * scale).rounded())
    let whole = scaled / Int64(scale)
    let fraction = String(scaled.magnitude % UInt64(scale))
    let sign = scaled < 0 && whole == 0 ? "-" : ""
    return "\(sign)\(whole).\(String(repeating: "0", count: digits - fraction.count))\(fraction)"
}

func field(_ name: String, in line: Substring) -> Double? {
    for part in line.split(separator: " ") where part.hasPrefix(name + "=") {
        return Double(part.dropFirst(name.count + 1).filter { $0 != "\r" })
    }
    return nil
}

extension String {
    func padding(_ width: Int) -> String { count >= width ? self : self + String(repeating: " ", count: width - count) }
}
