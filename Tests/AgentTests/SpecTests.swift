import OCI
import OCIJSON
import Testing

/// OCI runtime spec parsing: a valid config.json, and bad ones, each rejected with the bad
/// field named.
@Suite("OCI spec")
struct SpecTests {
    static let valid = """
    {
      "ociVersion": "1.1.0",
      "process": {
        "terminal": false,
        "user": {"uid": 1000, "gid": 1000, "additionalGids": [2000]},
        "args": ["sh", "-c", "echo hello"],
        "env": ["PATH=/usr/bin:/bin", "TERM=xterm"],
        "cwd": "/",
        "capabilities": {"bounding": ["CAP_KILL", "CAP_NET_BIND_SERVICE"], "effective": ["CAP_KILL"]},
        "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
        "noNewPrivileges": true
      },
      "root": {"path": "rootfs", "readonly": true},
      "hostname": "box",
      "mounts": [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/data", "source": "/srv/data", "options": ["rbind", "ro"]}
      ],
      "linux": {
        "namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "uts"}, {"type": "ipc"}],
        "resources": {"memory": {"limit": 67108864}, "cpu": {"quota": 50000, "period": 100000}, "pids": {"limit": 64}},
        "maskedPaths": ["/proc/kcore"],
        "readonlyPaths": ["/proc/sys"],
        "cgroupsPath": "kvmrun/box"
      }
    }
    """

    static func parse(_ text: String) throws(SpecError) -> Spec { try Spec.parse(json: Array(text.utf8)) }

    /// The valid spec with `old` replaced by `new`; must be rejected naming `field`.
    static func rejection(_ old: String, _ new: String) -> SpecError? {
        let text = valid.replacingFirst(old, with: new)
        precondition(text != valid, "fixture edit \(old) not found")
        do {
            _ = try parse(text)
            return nil
        } catch {
            return error
        }
    }

    @Test func validSpecParses() throws {
        let spec = try Self.parse(Self.valid)
        #expect(spec.process?.args == ["sh", "-c", "echo hello"])
        #expect(spec.process?.user.additionalGids == [2000])
        #expect(spec.root == Spec.Root(path: "rootfs", readonly: true))
        #expect(spec.mounts?.count == 2)
        #expect(spec.linux?.resources?.memory?.limit == 64 << 20)
        #expect(spec.linux?.namespaces?.map(\.type) == ["pid", "mount", "uts", "ipc"])
        // JSON round trip.
        #expect(try Spec.parse(json: spec.json()) == spec)
    }

    @Test func notJSON() {
        #expect(throws: SpecError(field: "", reason: "not valid JSON")) { try Self.parse("{\"ociVersion\": ") }
    }

    @Test(arguments: [
        ("\"ociVersion\": \"1.1.0\"", "\"ociVersion\": \"2.0\"", "ociVersion"),
        ("\"args\": [\"sh\", \"-c\", \"echo hello\"]", "\"args\": []", "process.args"),
        ("\"args\": [\"sh\", \"-c\", \"echo hello\"]", "\"args\": \"sh\"", "process.args"),
        ("\"uid\": 1000", "\"uid\": -1", "process.user.uid"),
        ("\"uid\": 1000", "\"uid\": \"root\"", "process.user.uid"),
        ("[2000]", "[2000, -5]", "process.user.additionalGids[1]"),
        ("\"limit\": 64}", "\"limit\": 6.5}", "linux.resources.pids.limit"),
        ("\"cwd\": \"/\"", "\"cwd\": \"relative\"", "process.cwd"),
        ("\"TERM=xterm\"", "\"TERM\"", "process.env[1]"),
        ("\"soft\": 1024", "\"soft\": 4096", "process.rlimits[0].soft"),
        ("\"RLIMIT_NOFILE\"", "\"RLIMIT_FILES\"", "process.rlimits[0].type"),
        ("[\"CAP_KILL\"]", "[\"CAP_FLY\"]", "process.capabilities.effective[0]"),
        ("\"root\": {\"path\": \"rootfs\", \"readonly\": true},", "", "root.path"),
        ("\"destination\": \"/data\"", "\"destination\": \"data\"", "mounts[1].destination"),
        ("{\"destination\": \"/proc\", \"type\": \"proc\", \"source\": \"proc\"}", "{\"destination\": \"/proc\", \"source\": \"proc\"}", "mounts[0].type"),
        ("{\"type\": \"ipc\"}", "{\"type\": \"ipcs\"}", "linux.namespaces[3].type"),
        ("{\"type\": \"ipc\"}", "{\"type\": \"pid\"}", "linux.namespaces[3].type"),
        ("{\"type\": \"ipc\"}", "{\"type\": \"user\"}", "linux.namespaces[3].type"),
        ("{\"type\": \"uts\"}, ", "", "hostname"),
        ("\"limit\": 67108864", "\"limit\": 12", "linux.resources.memory.limit"),
        ("\"quota\": 50000", "\"quota\": 5", "linux.resources.cpu.quota"),
        ("\"cgroupsPath\": \"kvmrun/box\"", "\"cgroupsPath\": \"../../escape\"", "linux.cgroupsPath"),
        ("[\"/proc/kcore\"]", "[\"proc/kcore\"]", "linux.maskedPaths[0]"),
        ("\"process\": {", "\"process\": null, \"x\": {", "process"),
    ])
    func badSpecNamesField(old: String, new: String, field: String) {
        let error = Self.rejection(old, new)
        #expect(error?.field == field, "\(error.map(String.init(describing:)) ?? "accepted")")
        #expect(error.map { String(describing: $0).hasPrefix("OCI spec: \(field): ") } == true)
    }

    @Test func errorMessagesSayWhatIsWrong() {
        #expect(Self.rejection("\"uid\": 1000", "\"uid\": \"root\"")?.reason == "expected a non-negative integer")
        #expect(Self.rejection("\"uid\": 1000", "\"uid\": -1")?.reason == "invalid value (must be an integer in 0...4294967295, not -1)")
        #expect(Self.rejection("\"args\": [\"sh\", \"-c\", \"echo hello\"]", "\"args\": []")?.reason == "must name a program (non-empty)")
        #expect(Self.rejection("{\"type\": \"ipc\"}", "{\"type\": \"pid\"}")?.reason == "namespace \"pid\" listed twice")
    }
}

extension String {
    func replacingFirst(_ old: String, with new: String) -> String {
        guard let range = range(of: old) else { return self }
        var copy = self
        copy.replaceSubrange(range, with: new)
        return copy
    }

    func range(of needle: String) -> Range<String.Index>? {
        guard !needle.isEmpty else { return nil }
        var index = startIndex
        while index < endIndex {
            if self[index...].hasPrefix(needle) { return index..<self.index(index, offsetBy: needle.count) }
            index = self.index(after: index)
        }
        return nil
    }
}
