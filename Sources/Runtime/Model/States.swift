// The two state machines of the runtime and the one place their transitions are checked.

/// A sandbox (one microVM and its agent): `ready → running ⇄ paused → stopped`.
public enum SandboxState: String, Codable, Sendable, CaseIterable {
    /// The VM booted and its agent answered; no container has run yet.
    case ready
    case running
    /// Every vCPU paused through the VMM's control API.
    case paused
    /// The VM is gone (stopped by the runtime, or its VMM process died).
    case stopped

    /// Whether `self → next` is allowed (as in Kata's virtcontainers: any live state may stop).
    public func allows(_ next: SandboxState) -> Bool {
        switch (self, next) {
        case (.ready, .running), (.ready, .stopped),
             (.running, .paused), (.running, .stopped),
             (.paused, .running), (.paused, .stopped):
            return true
        default:
            return false
        }
    }
}

/// A container inside a sandbox: `configured → created → running ⇄ paused → stopped`.
public enum ContainerState: String, Codable, Sendable, CaseIterable {
    /// Its state is on disk; nothing exists in the guest yet.
    case configured
    /// The agent created it: its init process waits for `start`.
    case created
    case running
    /// Its cgroup is frozen.
    case paused
    /// Its init process exited (or its sandbox died).
    case stopped

    public func allows(_ next: ContainerState) -> Bool {
        switch (self, next) {
        case (.configured, .created), (.configured, .stopped),
             (.created, .running), (.created, .stopped),
             (.running, .paused), (.running, .stopped),
             (.paused, .running), (.paused, .stopped):
            return true
        default:
            return false
        }
    }

    /// The status the OCI runtime spec's `state` reports ("creating", "created", "running",
    /// "stopped"; "paused" as runc reports it).
    public var ociStatus: String {
        switch self {
        case .configured: "creating"
        case .created: "created"
        case .running: "running"
        case .paused: "paused"
        case .stopped: "stopped"
        }
    }
}

/// Checks and applies a transition; the error names the object and both states.
public func transition<State: RawRepresentable & Equatable>(
    _ state: inout State, to next: State, what: String, allowed: (State, State) -> Bool
) throws(RuntimeError) where State.RawValue == String {
    guard allowed(state, next) else {
        throw .invalidTransition(what: what, from: state.rawValue, to: next.rawValue)
    }
    state = next
}

extension SandboxState {
    public mutating func move(to next: SandboxState, sandbox id: String) throws(RuntimeError) {
        try transition(&self, to: next, what: "sandbox \(id)") { $0.allows($1) }
    }
}

extension ContainerState {
    public mutating func move(to next: ContainerState, container id: String) throws(RuntimeError) {
        try transition(&self, to: next, what: "container \(id)") { $0.allows($1) }
    }
}
