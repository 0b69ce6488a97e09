import Runtime
import Testing

@Suite("Runtime state machines")
struct StateMachineTests {
    // Every pair of states, against the table the issue gives (any other transition refused).
    @Test("Sandbox transitions: ready → running ⇄ paused → stopped, nothing else")
    func sandboxTransitions() throws {
        let allowed: Set<String> = ["ready>running", "ready>stopped", "running>paused", "running>stopped",
                                    "paused>running", "paused>stopped"]
        for from in SandboxState.allCases {
            for to in SandboxState.allCases {
                var state = from
                let key = "\(from.rawValue)>\(to.rawValue)"
                if allowed.contains(key) {
                    try state.move(to: to, sandbox: "s1")
                    #expect(state == to)
                } else {
                    #expect(throws: RuntimeError.invalidTransition(what: "sandbox s1", from: from.rawValue, to: to.rawValue)) {
                        try state.move(to: to, sandbox: "s1")
                    }
                    #expect(state == from, "a refused transition leaves the state as it was")
                }
            }
        }
    }

    @Test("Container transitions: configured → created → running ⇄ paused → stopped, nothing else")
    func containerTransitions() throws {
        let allowed: Set<String> = ["configured>created", "configured>stopped", "created>running", "created>stopped",
                                    "running>paused", "running>stopped", "paused>running", "paused>stopped"]
        for from in ContainerState.allCases {
            for to in ContainerState.allCases {
                var state = from
                if allowed.contains("\(from.rawValue)>\(to.rawValue)") {
                    try state.move(to: to, container: "c1")
                    #expect(state == to)
                } else {
                    do {
                        try state.move(to: to, container: "c1")
                        Issue.record("\(from) → \(to) was allowed")
                    } catch {
                        #expect(error.description == "container c1: cannot go from \(from.rawValue) to \(to.rawValue)")
                    }
                    #expect(state == from)
                }
            }
        }
    }

    @Test("OCI status names")
    func ociStatus() {
        #expect(ContainerState.allCases.map(\.ociStatus) == ["creating", "created", "running", "paused", "stopped"])
    }
}
