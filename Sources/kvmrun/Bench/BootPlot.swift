// `kvmrun bench boot --plot FILE.svg`: the phases of every run as stacked horizontal bars on one
// time axis, kvmrun's runs above QEMU's, each VMM's median boot-to-init marked. Plain SVG
// (rect, line, text), written here: no plotting library.

struct BootPlot {
    struct Phase {
        let label: String
        let color: String
    }

    static let vmmSetUp = Phase(label: "spawn → first KVM_RUN (VMM set-up)", color: "#d95f02")
    static let entry = Phase(label: "first KVM_RUN → guest clock zero", color: "#fdb863")
    static let beforeClock = Phase(label: "spawn → guest clock zero (no finer split known)", color: "#e6ab02")
    static let beforeVM = Phase(label: "spawn → KVM_CREATE_VM (QEMU; derived from kvm-clock)", color: "#a6761d")
    static let afterVM = Phase(label: "KVM_CREATE_VM → guest clock zero (QEMU; set-up after the VM, entry)", color: "#e6ab02")
    static let kernel = Phase(label: "guest clock zero → Run /init (kernel)", color: "#1b9e77")
    static let initScript = Phase(label: "Run /init → init marker (init script)", color: "#7570b3")
    static let unknown = Phase(label: "to the init marker (no guest stamps)", color: "#999999")

    /// The bar segments of one run, in order, as (phase, milliseconds).
    static func segments(_ sample: Sample) -> [(Phase, Double)] {
        guard let total = sample.bootToInit else { return [] }
        guard let zero = sample.guestClockZero, let kernelTime = sample.kernelToInit, let initTime = sample.initToMarker else {
            if let firstRun = sample.firstRun, firstRun <= total { return [(vmmSetUp, firstRun), (unknown, total - firstRun)] }
            return [(unknown, total)]
        }
        var result: [(Phase, Double)] = []
        if let firstRun = sample.firstRun, firstRun <= zero {
            result.append((vmmSetUp, firstRun))
            result.append((entry, zero - firstRun))
        } else if let created = sample.vmCreated, created >= 0, created <= zero {
            result.append((beforeVM, created))
            result.append((afterVM, zero - created))
        } else {
            result.append((beforeClock, zero))
        }
        result.append((kernel, kernelTime))
        result.append((initScript, initTime))
        return result
    }

    let series: [Series]
    let title: String

    func svg() -> String {
        let rowHeight = 16.0, rowGap = 4.0, left = 150.0, right = 40.0, top = 50.0, width = 960.0
        let plotWidth = width - left - right
        let rows = series.reduce(0) { $0 + $1.samples.count }
        let groupGap = 24.0
        let used = Set(series.flatMap { $0.samples.flatMap { Self.segments($0).map(\.0.label) } })
        let legendPhases = [Self.vmmSetUp, Self.entry, Self.beforeVM, Self.afterVM, Self.beforeClock, Self.kernel, Self.initScript, Self.unknown]
            .filter { used.contains($0.label) }
        let plotHeight = Double(rows) * (rowHeight + rowGap) + Double(max(0, series.count - 1)) * groupGap
        let axisY = top + plotHeight + 10
        let height = axisY + 40 + Double(legendPhases.count) * 18 + 20
        let maxTime = series.flatMap { $0.values(\.bootToInit) }.max() ?? 1
        let scale = plotWidth / niceCeiling(maxTime)
        var out = """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" font-family="sans-serif" font-size="12">
        <rect width="100%" height="100%" fill="white"/>
        <text x="\(left)" y="24" font-size="15" font-weight="bold">\(escape(title))</text>

        """
        var y = top
        for (index, group) in series.enumerated() {
            let groupTop = y
            for (run, sample) in group.samples.enumerated() {
                out += "<text x=\"\(left - 8)\" y=\"\(y + rowHeight - 4)\" text-anchor=\"end\">\(escape(group.name)) run \(run + 1)</text>\n"
                var x = left
                if sample.error != nil {
                    out += "<text x=\"\(left + 4)\" y=\"\(y + rowHeight - 4)\" fill=\"#b00\">failed</text>\n"
                }
                for (phase, duration) in Self.segments(sample) where duration > 0 {
                    let w = duration * scale
                    out += "<rect x=\"\(fmt(x))\" y=\"\(fmt(y))\" width=\"\(fmt(w))\" height=\"\(fmt(rowHeight))\" fill=\"\(phase.color)\"><title>\(escape(group.name)) run \(run + 1): \(escape(phase.label)) \(format(duration)) ms</title></rect>\n"
                    x += w
                }
                y += rowHeight + rowGap
            }
            if let middle = group.median(\.bootToInit) {
                let x = left + middle * scale
                out += "<line x1=\"\(fmt(x))\" y1=\"\(fmt(groupTop - 3))\" x2=\"\(fmt(x))\" y2=\"\(fmt(y - rowGap + 3))\" stroke=\"black\" stroke-width=\"2\" stroke-dasharray=\"5,3\"/>\n"
                out += "<text x=\"\(fmt(x + 4))\" y=\"\(fmt(groupTop - 5))\">\(escape(group.name)) median \(format(middle)) ms</text>\n"
            }
            if index < series.count - 1 { y += groupGap }
        }
        // Time axis.
        let axisEnd = niceCeiling(maxTime)
        out += "<line x1=\"\(left)\" y1=\"\(fmt(axisY))\" x2=\"\(fmt(left + plotWidth))\" y2=\"\(fmt(axisY))\" stroke=\"black\"/>\n"
        let step = axisEnd / 10
        for tick in 0...10 {
            let value = Double(tick) * step
            let x = left + value * scale
            out += "<line x1=\"\(fmt(x))\" y1=\"\(fmt(axisY))\" x2=\"\(fmt(x))\" y2=\"\(fmt(axisY + 5))\" stroke=\"black\"/>\n"
            out += "<text x=\"\(fmt(x))\" y=\"\(fmt(axisY + 18))\" text-anchor=\"middle\">\(Int(value.rounded()))</text>\n"
        }
        out += "<text x=\"\(fmt(left + plotWidth / 2))\" y=\"\(fmt(axisY + 34))\" text-anchor=\"middle\">milliseconds since the VMM was spawned (host clock)</text>\n"
        var legendY = axisY + 50
        for phase in legendPhases {
            out += "<rect x=\"\(left)\" y=\"\(fmt(legendY - 10))\" width=\"12\" height=\"12\" fill=\"\(phase.color)\"/>"
            out += "<text x=\"\(left + 18)\" y=\"\(fmt(legendY))\">\(escape(phase.label))</text>\n"
            legendY += 18
        }
        out += "</svg>\n"
        return out
    }

    /// 1, 2 or 5 times a power of ten, at least `value`: a round end for the axis.
    func niceCeiling(_ value: Double) -> Double {
        var magnitude = 1.0
        while magnitude * 10 <= value { magnitude *= 10 }
        for factor in [1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0] where factor * magnitude >= value { return factor * magnitude }
        return 10 * magnitude
    }

    private func fmt(_ value: Double) -> String { format(value, digits: 1) }

    private func escape(_ text: String) -> String {
        var result = ""
        for character in text {
            switch character {
            case "&": result += "&amp;"
            case "<": result += "&lt;"
            case ">": result += "&gt;"
            case "\"": result += "&quot;"
            default: result.append(character)
            }
        }
        return result
    }
}
