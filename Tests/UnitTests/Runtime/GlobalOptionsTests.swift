@testable import kvmrun
import Testing

/// runc's global flags taken off the front of argv, the way podman and conmon pass them.
@Suite("Runtime global flags")
struct GlobalOptionsTests {
    @Test("podman's invocation: globals split off, the verb and its flags left in order")
    func podmanCommandLine() throws {
        let argv = ["--root", "/run/user/0/kvmrun", "--log", "/var/lib/c/ctr.log", "--log-format", "json", "--systemd-cgroup",
                    "create", "--bundle", "/b", "--pid-file", "/p", "ctr1"]
        let (options, rest) = try GlobalOptions.split(argv)
        #expect(options == GlobalOptions(root: "/run/user/0/kvmrun", log: "/var/lib/c/ctr.log", logFormat: .json,
                                         systemdCgroup: true, debug: false, rootless: nil))
        #expect(rest == ["create", "--bundle", "/b", "--pid-file", "/p", "ctr1"])
    }

    @Test("Defaults, and no globals at all")
    func defaults() throws {
        let (options, rest) = try GlobalOptions.split(["state", "c1"])
        #expect(options == GlobalOptions())
        #expect(options.root == "/run/kvmrun" && options.logFormat == .text && options.log == nil)
        #expect(rest == ["state", "c1"])
        #expect(try GlobalOptions.split([]).rest == [])
    }

    @Test("--flag=value, one dash, booleans with values, --criu and --rootless accepted")
    func forms() throws {
        let (options, rest) = try GlobalOptions.split(["--root=/r", "-log", "/l", "--log-format=text", "--debug",
                                                       "--systemd-cgroup=false", "--criu", "/usr/sbin/criu", "--rootless=auto",
                                                       "kill", "c1", "KILL"])
        #expect(options == GlobalOptions(root: "/r", log: "/l", logFormat: .text, systemdCgroup: false, debug: true, rootless: "auto"))
        #expect(rest == ["kill", "c1", "KILL"])
        #expect(try GlobalOptions.split(["--debug=1", "--", "--not-a-global"]).rest == ["--not-a-global"])
        #expect(try GlobalOptions.split(["--log-format", "", "list"]).0.logFormat == .text)
    }

    @Test("A relative --root is made absolute")
    func relativeRoot() throws {
        let root = try GlobalOptions.split(["--root", "./state/", "list"]).0.root
        #expect(root.hasPrefix("/") && root.hasSuffix("/state") && !root.contains("/./"))
    }

    @Test("--help and --version are left for ArgumentParser")
    func parserFlags() throws {
        #expect(try GlobalOptions.split(["--debug", "--help"]).rest == ["--help"])
        #expect(try GlobalOptions.split(["-h"]).rest == ["-h"])
        #expect(try GlobalOptions.split(["--version"]).rest == ["--version"])
    }

    @Test("Unknown flags and bad values are named")
    func errors() {
        #expect(throws: GlobalOptionsError.self) { try GlobalOptions.split(["--bogus", "create"]) }
        do {
            _ = try GlobalOptions.split(["--root", "/r", "--bogus=1", "create"])
            Issue.record("--bogus accepted")
        } catch {
            #expect(error.description.hasPrefix("unknown global flag --bogus=1 (global flags go before the command: --root DIR"))
        }
        #expect(throws: GlobalOptionsError(description: "--log needs a value")) { try GlobalOptions.split(["--log"]) }
        #expect(throws: GlobalOptionsError(description: "invalid --log-format \"xml\" (text or json)")) {
            try GlobalOptions.split(["--log-format", "xml", "state", "c1"])
        }
        #expect(throws: GlobalOptionsError(description: "invalid value \"yes\" for --debug (true or false)")) {
            try GlobalOptions.split(["--debug=yes"])
        }
        #expect(throws: GlobalOptionsError(description: "--root must not be / (got \"/\")")) { try GlobalOptions.split(["--root", "/"]) }
        #expect(throws: GlobalOptionsError.self) { try GlobalOptions.split(["--root="]) }
    }

    @Test("current is settable by main and read by the verbs")
    func current() throws {
        let saved = GlobalOptions.current
        defer { GlobalOptions.current = saved }
        GlobalOptions.current = try GlobalOptions.split(["--root", "/tmp/x", "list"]).0
        #expect(GlobalOptions.current.root == "/tmp/x")
    }
}
