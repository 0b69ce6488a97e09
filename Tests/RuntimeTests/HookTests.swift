#if canImport(Glibc)
import Glibc
#endif
import OCI
import Runtime
import Sys
import Testing

/// OCI hooks run for real: sh scripts and `sh -c` hooks that write what they got (stdin, argv,
/// environment) into files of a scratch directory, checked afterwards.
@Suite("OCI hooks run on the host")
struct HookTests {
    let state = OCIState(id: "c1", state: .created, pid: 4242, bundle: "/tmp/bundle-c1", annotations: ["a": "b"])

    @Test("The state arrives on stdin; args are argv, args[0] included")
    func stdinAndArgv() throws {
        let dir = try HookScratch()
        let hook = Spec.Hook(path: "/bin/sh", args: ["my-hook-argv0", "-c", """
            tr '\\0' '\\n' < /proc/$$/cmdline > \(dir.path)/argv; cat > \(dir.path)/stdin
            """, "ignored-name", "one", "two words"])
        try HookRunner.run([hook], phase: "createRuntime", state: state)
        #expect(dir.read("stdin") == String(decoding: state.json(), as: UTF8.self))
        #expect(try OCIState.parse(json: Array(dir.read("stdin").utf8)) == state)
        let argv = dir.read("argv").split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(argv.first == "my-hook-argv0")
        #expect(argv.suffix(4) == ["ignored-name", "one", "two words", ""])
    }

    @Test("A script file with no args gets its path as argv[0] and no arguments")
    func scriptWithoutArgs() throws {
        let dir = try HookScratch()
        let script = try dir.script("hook.sh", "echo \"$#:$0\" > \(dir.path)/out; cat > \(dir.path)/stdin")
        try HookRunner.run([Spec.Hook(path: script)], phase: "poststart", state: state)
        #expect(dir.read("out") == "0:\(script)\n")
        #expect(dir.read("stdin").hasPrefix("{"))
    }

    @Test("Hooks run one after the other in the order listed")
    func order() throws {
        let dir = try HookScratch()
        let hooks = (1...4).map { number in
            // Earlier hooks sleep longer: only one-at-a-time keeps the order.
            Spec.Hook(path: "/bin/sh", args: ["sh", "-c", "sleep 0.0\(5 - number); echo \(number) >> \(dir.path)/order"])
        }
        try HookRunner.run(hooks, phase: "prestart", state: state)
        #expect(dir.read("order") == "1\n2\n3\n4\n")
    }

    @Test("env replaces the environment; without env the runtime's is inherited")
    func environment() throws {
        let dir = try HookScratch()
        try HookRunner.run([Spec.Hook(path: "/bin/sh", args: ["sh", "-c", "/usr/bin/env > \(dir.path)/env"], env: ["A=1", "B=two words"])],
                           phase: "poststop", state: state)
        let lines = Set(dir.read("env").split(separator: "\n").map(String.init))
        #expect(lines.contains("A=1") && lines.contains("B=two words"))
        #expect(!lines.contains { $0.hasPrefix("PATH=") }, "the runtime's PATH leaked into a hook with env: \(lines)")

        try HookRunner.run([Spec.Hook(path: "/bin/sh", args: ["sh", "-c", "/usr/bin/env > \(dir.path)/inherited"])],
                           phase: "poststop", state: state)
        let inherited = Set(dir.read("inherited").split(separator: "\n").map(String.init))
        #expect(inherited.contains("PATH=\(String(cString: getenv("PATH")!))"))
    }

    @Test("A failing hook throws with its status and output; the hooks after it do not run")
    func failureStops() throws {
        let dir = try HookScratch()
        let hooks = [
            Spec.Hook(path: "/bin/sh", args: ["sh", "-c", "echo first >> \(dir.path)/ran"]),
            Spec.Hook(path: "/bin/sh", args: ["sh", "-c", "echo partial output; echo 'boom: no netns' >&2; exit 3"]),
            Spec.Hook(path: "/bin/sh", args: ["sh", "-c", "echo third >> \(dir.path)/ran"]),
        ]
        #expect(throws: RuntimeError.failed(step: "createRuntime hook 1 (/bin/sh)",
                                            reason: "exited with status 3; stdout: partial output; stderr: boom: no netns")) {
            try HookRunner.run(hooks, phase: "createRuntime", state: state)
        }
        #expect(dir.read("ran") == "first\n")
    }

    @Test("runIgnoringFailures runs every hook and returns one warning per failure")
    func warnings() throws {
        let dir = try HookScratch()
        let hooks = [
            Spec.Hook(path: "/bin/sh", args: ["sh", "-c", "echo 1 >> \(dir.path)/ran; exit 1"]),
            Spec.Hook(path: "/bin/sh", args: ["sh", "-c", "echo 2 >> \(dir.path)/ran"]),
            Spec.Hook(path: "/nonexistent/hook"),
            Spec.Hook(path: "/bin/sh", args: ["sh", "-c", "echo 4 >> \(dir.path)/ran; kill -TERM $$"]),
        ]
        let warnings = HookRunner.runIgnoringFailures(hooks, phase: "poststop", state: state)
        #expect(dir.read("ran") == "1\n2\n4\n")
        #expect(warnings.count == 3)
        #expect(warnings.first == "poststop hook 0 (/bin/sh): exited with status 1")
        #expect(warnings.dropFirst().first?.hasPrefix("poststop hook 2 (/nonexistent/hook): cannot start: posix_spawn /nonexistent/hook: ENOENT") == true)
        #expect(warnings.last == "poststop hook 3 (/bin/sh): killed by signal 15 (SIGTERM)")
        #expect(HookRunner.runIgnoringFailures([], phase: "poststop", state: state).isEmpty)
    }

    @Test("Past its timeout a hook and what it started are killed, and the error says so")
    func timeout() throws {
        let dir = try HookScratch()
        let hook = Spec.Hook(path: "/bin/sh", args: ["sh", "-c", "sleep 60 & echo $! > \(dir.path)/child; echo started; wait"], timeout: 1)
        let start = MonotonicClock.now
        #expect(throws: RuntimeError.failed(step: "prestart hook 0 (/bin/sh)",
                                            reason: "still running after its timeout of 1 s (killed); stdout: started")) {
            try HookRunner.run([hook], phase: "prestart", state: state)
        }
        let elapsed = Double(MonotonicClock.now - start) / 1e9
        #expect(elapsed >= 1 && elapsed < 5, "took \(elapsed) s")
        // The background sleep was in the hook's process group: gone (or a zombie awaiting init).
        let child = try #require(Int32(dir.read("child").split(separator: "\n").first ?? ""))
        var dead = false
        for _ in 0..<100 where !dead {
            let stat = readTextFile("/proc/\(child)/stat")
            dead = stat == nil || stat!.contains(") Z ")
            if !dead { usleep(10_000) }
        }
        #expect(dead, "background child \(child) of the hook still runs")
    }

    @Test("A state larger than a pipe reaches a hook that reads it, and does not block one that does not")
    func largeState() throws {
        let dir = try HookScratch()
        var big = state
        big.annotations = ["big": String(repeating: "x", count: 300_000)]
        try HookRunner.run([Spec.Hook(path: "/bin/true", timeout: 10),
                            Spec.Hook(path: "/bin/sh", args: ["sh", "-c", "wc -c > \(dir.path)/size"], timeout: 10)],
                           phase: "createRuntime", state: big)
        #expect(Int(dir.read("size").split(separator: "\n").first ?? "") == big.json().count)
    }

    @Test("Long output is cut to its end in the error")
    func longOutput() {
        let hook = Spec.Hook(path: "/bin/sh", args: ["sh", "-c", "yes line | head -n 5000 >&2; echo the-end >&2; exit 1"])
        do {
            try HookRunner.run([hook], phase: "poststart", state: state)
            Issue.record("the hook failed but run did not throw")
        } catch {
            let text = error.description
            #expect(text.hasSuffix("the-end"))
            #expect(text.contains("stderr: …"))
            #expect(text.utf8.count < 4096 + 200)
        }
    }

    @Test("Which phases fail the operation")
    func fatalPhases() {
        #expect(["prestart", "createRuntime", "createContainer", "startContainer", "poststart"].allSatisfy { HookRunner.failureIsFatal(phase: $0) })
        #expect(!HookRunner.failureIsFatal(phase: "poststop"))
    }
}

/// A scratch directory under /tmp, removed with its files when the test ends.
final class HookScratch {
    let path: String

    init() throws {
        var template = Array("/tmp/kvmrun-hooktest-XXXXXX".utf8CString)
        guard mkdtemp(&template) != nil else { throw SystemError(call: "mkdtemp", errno: errno) }
        path = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }

    deinit {
        if let directory = opendir(path) {
            while let entry = readdir(directory) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
                if name != "." && name != ".." { unlink("\(path)/\(name)") }
            }
            closedir(directory)
        }
        rmdir(path)
    }

    func read(_ name: String) -> String { readTextFile("\(path)/\(name)") ?? "" }

    /// Writes an executable sh script; returns its path.
    func script(_ name: String, _ body: String) throws -> String {
        let file = "\(path)/\(name)"
        let fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o755)
        guard fd >= 0 else { throw SystemError(call: "open \(file)", errno: errno) }
        defer { close(fd) }
        let bytes = Array("#!/bin/sh\n\(body)\n".utf8)
        guard write(fd, bytes, bytes.count) == bytes.count else { throw SystemError(call: "write \(file)", errno: errno) }
        return file
    }
}

@Suite("OCI hooks: working directory")
struct HookDirectoryTests {
    @Test("A hook runs in the bundle directory, as runc's do")
    func runsInBundle() throws {
        let dir = try HookScratch()
        let state = OCIState(id: "c1", state: .created, pid: 1, bundle: dir.path)
        try HookRunner.run([Spec.Hook(path: "/bin/sh", args: ["sh", "-c", "pwd > out"])], phase: "createRuntime", state: state)
        #expect(dir.read("out") == dir.path + "\n")
    }
}
