// The summary `kvmrun bench boot` prints after its runs: medians per phase for each VMM, the
// ratio, CPU time, memory, and (with --guest-initcalls) the slowest initcalls.

struct BootReport {
    let series: [Series]
    let initcalls: Bool
    /// Seconds after the marker the settled memory figures were read (0: not read).
    var settleSeconds = 0
    /// Names for initcall addresses (the guest kernel has no KALLSYMS).
    var symbols: KernelSymbols?

    struct Row {
        let label: String
        let key: KeyPath<Sample, Double?>
        /// What to print for a VMM that cannot give this figure.
        let missing: String
    }

    static var phaseRows: [Row] { [
        Row(label: "spawn → KVM_CREATE_VM (derived)", key: \.vmCreated, missing: "n/a"),
        Row(label: "spawn → first KVM_RUN (host clock)", key: \.firstRun, missing: "not observable without tracing"),
        Row(label: "spawn → guest clock zero (derived)", key: \.guestClockZero, missing: "n/a"),
        Row(label: "  of which first KVM_RUN → clock zero", key: \.entryToClockZero, missing: "n/a"),
        Row(label: "guest clock zero → Run /init (guest)", key: \.kernelToInit, missing: "n/a"),
        Row(label: "Run /init → init marker (guest)", key: \.initToMarker, missing: "n/a"),
        Row(label: "spawn → init marker (host clock)", key: \.bootToInit, missing: "n/a"),
    ] }
    static var cpuRows: [Row] { [
        Row(label: "CPU to first KVM_RUN (user+sys)", key: \.setupCPU, missing: "not observable without tracing"),
        Row(label: "non-vCPU threads' CPU at the marker", key: \.vmmThreadsCPU, missing: "n/a"),
    ] }
    static var memoryRows: [Row] { [
        Row(label: "RSS outside guest RAM", key: \.residentMiB, missing: "n/a"),
        Row(label: "PSS outside guest RAM", key: \.proportionalMiB, missing: "n/a"),
        Row(label: "anonymous outside guest RAM", key: \.anonymousMiB, missing: "n/a"),
    ] }

    func print() {
        Swift.print("")
        table("phases, ms (medians; min–max)", Self.phaseRows)
        if series.count == 2, let ours = series[0].median(\.bootToInit), let theirs = series[1].median(\.bootToInit), theirs > 0 {
            Swift.print("ratio kvmrun/qemu, spawn → init marker (medians): \(format(ours / theirs, digits: 3))")
            if let a = series[0].median(\.kernelToInit), let b = series[1].median(\.kernelToInit), b > 0 {
                Swift.print("ratio kvmrun/qemu, guest clock zero → Run /init (medians): \(format(a / b, digits: 3))")
            }
        }
        table("VMM CPU time, ms", Self.cpuRows)
        table("VMM memory, MiB (at the init marker)", Self.memoryRows)
        if settleSeconds > 0 {
            table("VMM memory, MiB (\(settleSeconds) s after the marker, guest idle)", [
                Row(label: "RSS outside guest RAM", key: \.settledResidentMiB, missing: "n/a"),
                Row(label: "PSS outside guest RAM", key: \.settledProportionalMiB, missing: "n/a"),
            ])
        }
        if initcalls {
            for group in series {
                Swift.print("slowest guest initcalls under \(group.name) (median µs over the runs; initcall_debug slows the boot itself)")
                let slowest = group.slowestInitcalls(15)
                if slowest.isEmpty { Swift.print("  none reported (an initramfs without kvmrun.phases support?)") }
                for (name, micros) in slowest {
                    Swift.print("  \(format(micros / 1000, digits: 2).leftPadded(9)) ms  \(symbols?.name(for: name) ?? name)")
                }
            }
        }
    }

    private func table(_ title: String, _ rows: [Row]) {
        Swift.print(title)
        var header = "  " + "".padding(40)
        for group in series { header += group.name.padding(28) }
        Swift.print(header)
        for row in rows {
            var line = "  " + row.label.padding(40)
            for group in series {
                let values = group.values(row.key).sorted()
                if let middle = median(values), let low = values.first, let high = values.last {
                    line += "\(format(middle)) (\(format(low))–\(format(high)))".padding(28)
                } else {
                    line += row.missing.padding(28)
                }
            }
            Swift.print(line)
        }
    }
}

extension String {
    func leftPadded(_ width: Int) -> String { count >= width ? self : String(repeating: " ", count: width - count) + self }
}
