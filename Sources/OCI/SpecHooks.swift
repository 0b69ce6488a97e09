// The spec's POSIX-platform `hooks` object (config.md, "POSIX-platform Hooks"): lists of
// programs the runtime runs at points of the container's lifecycle, each with the container's
// state JSON on its stdin. Which phase fails the operation and which only warns is the runtime's
// business (Sources/Runtime/Hooks/Hooks.swift); decoding is in SpecDecoding.swift, checks in
// SpecValidation.swift.

extension Spec {
    public struct Hooks: Codable, Equatable, Sendable {
        /// Deprecated by the spec in favour of createRuntime; still sent by engines, run before it.
        public var prestart: [Hook]?
        public var createRuntime: [Hook]?
        public var createContainer: [Hook]?
        public var startContainer: [Hook]?
        public var poststart: [Hook]?
        public var poststop: [Hook]?

        public init(prestart: [Hook]? = nil, createRuntime: [Hook]? = nil, createContainer: [Hook]? = nil,
                    startContainer: [Hook]? = nil, poststart: [Hook]? = nil, poststop: [Hook]? = nil) {
            self.prestart = prestart
            self.createRuntime = createRuntime
            self.createContainer = createContainer
            self.startContainer = startContainer
            self.poststart = poststart
            self.poststop = poststop
        }

        /// Every phase with its JSON name and its hooks (nil lists as empty), in lifecycle order.
        public var phases: [(name: String, hooks: [Hook])] {
            [("prestart", prestart ?? []), ("createRuntime", createRuntime ?? []),
             ("createContainer", createContainer ?? []), ("startContainer", startContainer ?? []),
             ("poststart", poststart ?? []), ("poststop", poststop ?? [])]
        }
    }

    /// One hook: `path` as execv's path (absolute), `args` as its argv (args[0] is argv[0]),
    /// `env` as its environ, `timeout` in seconds (> 0) after which the runtime kills it.
    public struct Hook: Codable, Equatable, Sendable {
        public var path: String
        public var args: [String]?
        public var env: [String]?
        public var timeout: Int?

        public init(path: String, args: [String]? = nil, env: [String]? = nil, timeout: Int? = nil) {
            self.path = path
            self.args = args
            self.env = env
            self.timeout = timeout
        }
    }
}
