import OCI
import OCIJSON
import Runtime
import Testing

/// The spec's `hooks` object: parsed with the runtime spec's field names, and rejected with
/// the bad field named. And the OCI state every hook reads.
@Suite("OCI hooks in config.json, OCI state")
struct HookSpecTests {
    static func spec(hooks: String) -> String {
        """
        {"ociVersion": "1.2.0", "root": {"path": "rootfs"},
         "process": {"user": {"uid": 0, "gid": 0}, "args": ["true"], "cwd": "/"},
         "hooks": \(hooks)}
        """
    }

    static func rejection(_ hooks: String) -> SpecError? {
        do {
            _ = try Spec.parse(json: Array(spec(hooks: hooks).utf8))
            return nil
        } catch {
            return error
        }
    }

    @Test("Every phase parses with path, args, env, timeout")
    func parsesAllPhases() throws {
        let text = Self.spec(hooks: """
        {"prestart": [{"path": "/usr/bin/fix-mounts", "args": ["fix-mounts", "arg1"], "env": ["key1=value1"]},
                      {"path": "/usr/bin/setup-network"}],
         "createRuntime": [{"path": "/a", "timeout": 5}],
         "createContainer": [{"path": "/b"}],
         "startContainer": [{"path": "/c"}],
         "poststart": [{"path": "/d"}],
         "poststop": [{"path": "/e", "args": ["e"]}]}
        """)
        let spec = try Spec.parse(json: Array(text.utf8))
        let hooks = try #require(spec.hooks)
        #expect(hooks.prestart == [Spec.Hook(path: "/usr/bin/fix-mounts", args: ["fix-mounts", "arg1"], env: ["key1=value1"]),
                                   Spec.Hook(path: "/usr/bin/setup-network")])
        #expect(hooks.createRuntime == [Spec.Hook(path: "/a", timeout: 5)])
        #expect(hooks.phases.map(\.name) == ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"])
        #expect(hooks.phases.map(\.hooks.count) == [2, 1, 1, 1, 1, 1])
        // Round trip through the JSON the runtime writes.
        #expect(try Spec.parse(json: spec.json()) == spec)
    }

    @Test("No hooks object: nil; empty lists are fine")
    func absentAndEmpty() throws {
        let none = try Spec.parse(json: Array(#"{"ociVersion": "1.2.0", "root": {"path": "r"}, "process": {"user": {"uid": 0, "gid": 0}, "args": ["true"], "cwd": "/"}}"#.utf8))
        #expect(none.hooks == nil)
        #expect(Self.rejection(#"{"poststop": []}"#) == nil)
    }

    @Test("A relative path, a timeout of 0 or less, a bad env entry or a fractional timeout name the field")
    func rejections() {
        #expect(Self.rejection(#"{"poststop": [{"path": "hook.sh"}]}"#)
            == SpecError(field: "hooks.poststop[0].path", reason: "must be an absolute path, not \"hook.sh\""))
        #expect(Self.rejection(#"{"createRuntime": [{"path": "/a"}, {"path": "/b", "timeout": 0}]}"#)
            == SpecError(field: "hooks.createRuntime[1].timeout", reason: "must be greater than zero, not 0"))
        #expect(Self.rejection(#"{"prestart": [{"path": "/a", "timeout": -3}]}"#)?.field == "hooks.prestart[0].timeout")
        #expect(Self.rejection(#"{"poststart": [{"path": "/a", "env": ["NOEQUALS"]}]}"#)
            == SpecError(field: "hooks.poststart[0].env[0]", reason: "must be NAME=VALUE, not \"NOEQUALS\""))
        #expect(Self.rejection(#"{"prestart": [{"path": "/a", "timeout": 1.5}]}"#)?.field == "hooks.prestart[0].timeout")
        #expect(Self.rejection(#"{"prestart": [{"args": ["x"]}]}"#) == SpecError(field: "hooks.prestart[0].path", reason: "required field missing"))
        #expect(Self.rejection(#"{"prestart": {"path": "/a"}}"#)?.field == "hooks.prestart")
    }

    @Test("OCI state JSON: the spec's fields, pid left out when 0, parsed back")
    func stateJSON() throws {
        let running = OCIState(id: "c1", state: .running, pid: 4422, bundle: "/containers/redis", annotations: ["myKey": "myValue"])
        #expect(String(decoding: running.json(), as: UTF8.self)
            == #"{"annotations":{"myKey":"myValue"},"bundle":"/containers/redis","id":"c1","ociVersion":"1.3.0","pid":4422,"status":"running"}"#)
        #expect(try OCIState.parse(json: running.json()) == running)

        let stopped = OCIState(id: "c1", state: .stopped, bundle: "/b")
        #expect(String(decoding: stopped.json(), as: UTF8.self) == #"{"bundle":"/b","id":"c1","ociVersion":"1.3.0","status":"stopped"}"#)
        #expect(try OCIState.parse(json: stopped.json()) == stopped)
        #expect(OCIState(id: "x", state: .configured, bundle: "/b").status == "creating")

        #expect(throws: RuntimeError.self) { try OCIState.parse(json: Array(#"{"id": "c1"}"#.utf8)) }
    }
}
