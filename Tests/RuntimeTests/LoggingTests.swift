#if canImport(Glibc)
import Glibc
#endif
import FoundationEssentials
import Logging
import Runtime
import Sys
import Testing

/// The runtime's log handler: runc's JSON and text lines in the --log file, parsed back, and
/// "kvmrun: …" lines on stderr (a pipe here), each at its levels.
@Suite("Runtime logging (runc's formats)")
struct LoggingTests {
    /// A log file path in a fresh directory, and a pipe standing in for stderr.
    final class Destination {
        let directory: String
        let path: String
        let stderrRead: Int32
        let stderrWrite: Int32

        init() throws {
            var template = Array("/tmp/kvmrun-logtest-XXXXXX".utf8CString)
            guard mkdtemp(&template) != nil else { throw SystemError(call: "mkdtemp", errno: errno) }
            directory = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            path = directory + "/runtime.log"
            var fds: [Int32] = [0, 0]
            guard pipe(&fds) == 0 else { throw SystemError(call: "pipe", errno: errno) }
            for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
            _ = fcntl(fds[0], F_SETFL, O_NONBLOCK)
            stderrRead = fds[0]
            stderrWrite = fds[1]
        }

        deinit {
            unlink(path)
            rmdir(directory)
            close(stderrRead)
            close(stderrWrite)
        }

        func logger(_ format: LogFormat, debug: Bool = false, file: Bool = true) -> Logger {
            RuntimeLogging.makeLogger(logPath: file ? path : nil, format: format, debug: debug, stderr: stderrWrite)
        }

        var fileLines: [String] { (readTextFile(path) ?? "").split(separator: "\n").map(String.init) }

        var stderrText: String {
            var bytes = [UInt8](repeating: 0, count: 65536)
            let count = read(stderrRead, &bytes, bytes.count)
            return count > 0 ? String(decoding: bytes[0..<count], as: UTF8.self) : ""
        }
    }

    static func decode(_ line: String) throws -> [String: String] {
        try JSONDecoder().decode([String: String].self, from: Data(line.utf8))
    }

    @Test("JSON lines decode to level, msg, time and the metadata")
    func jsonLines() throws {
        let out = try Destination()
        var logger = out.logger(.json)
        logger[metadataKey: "container"] = "c1"
        logger.error("create c1: \"quoted\" <tag> & a\nsecond line", metadata: ["step": "boot", "msg": "clash"])
        logger.info("started")
        let lines = out.fileLines
        try #require(lines.count == 2)
        let first = try Self.decode(lines[0])
        #expect(first["level"] == "error")
        #expect(first["msg"] == "create c1: \"quoted\" <tag> & a\nsecond line")
        #expect(first["container"] == "c1" && first["step"] == "boot")
        #expect(first["fields.msg"] == "clash", "a field named like a fixed key is prefixed, as logrus does")
        // RFC 3339 UTC to the second.
        let time = try #require(first["time"])
        #expect(time.count == 20 && time.hasSuffix("Z") && time.dropFirst(10).first == "T")
        // Keys sorted, HTML characters escaped as Go's encoding/json does.
        #expect(lines[0].hasPrefix(#"{"container":"c1","fields.msg":"clash","level":"error","msg":"create c1: \"quoted\" \u003ctag\u003e \u0026 a\nsecond line","step":"boot","time":"#))
        let second = try Self.decode(lines[1])
        #expect(second == ["level": "info", "msg": "started", "container": "c1", "time": second["time"] ?? "?"])
        #expect(out.stderrText == "kvmrun: create c1: \"quoted\" <tag> & a\nsecond line\n")
    }

    @Test("Text lines: time, level, msg, then the fields sorted, quoted where logrus quotes")
    func textLines() throws {
        let out = try Destination()
        let logger = out.logger(.text)
        logger.warning("hook failed", metadata: ["phase": "poststop", "path": "/usr/bin/x y", "empty": ""])
        let lines = out.fileLines
        try #require(lines.count == 1)
        let fields = try Self.logfmt(lines[0])
        #expect(fields.map(\.key) == ["time", "level", "msg", "empty", "path", "phase"])
        #expect(fields[1].value == "warning" && fields[2].value == "hook failed")
        #expect(fields[3].value == "" && fields[4].value == "/usr/bin/x y" && fields[5].value == "poststop")
        #expect(lines[0].contains(#" level=warning msg="hook failed" empty= path="/usr/bin/x y" phase=poststop"#))
        #expect(lines[0].hasPrefix("time=\"") && fields[0].value.hasSuffix("Z"))
        #expect(out.stderrText == "kvmrun: warning: hook failed\n")
    }

    @Test("Levels: info and up in the file, debug with --debug; warning and up on stderr")
    func levels() throws {
        let out = try Destination()
        let logger = out.logger(.json)
        logger.trace("t")
        logger.debug("d")
        logger.info("i")
        logger.notice("n")
        logger.warning("w")
        logger.error("e")
        logger.critical("c")
        #expect(try out.fileLines.map { try Self.decode($0)["msg"] ?? "" } == ["i", "n", "w", "e", "c"])
        #expect(try out.fileLines.map { try Self.decode($0)["level"] ?? "" } == ["info", "info", "warning", "error", "error"])
        #expect(out.stderrText == "kvmrun: warning: w\nkvmrun: e\nkvmrun: c\n")

        let debugOut = try Destination()
        let debugLogger = debugOut.logger(.text, debug: true)
        debugLogger.trace("t")
        debugLogger.debug("d")
        debugLogger.info("i")
        let lines = debugOut.fileLines
        #expect(lines.count == 2)
        #expect(lines.first?.contains("level=debug msg=d") == true)
        // --debug adds the caller, as runc's does.
        #expect(lines.first?.contains("file=\"LoggingTests.swift:") == true && lines.first?.contains(" func=") == true)
        #expect(debugOut.stderrText == "", "with a log file, stderr keeps to warnings and errors")
    }

    @Test("Without --log, stderr alone; with --debug it takes debug lines too")
    func stderrOnly() throws {
        let out = try Destination()
        let logger = out.logger(.json, file: false)
        logger.info("quiet")
        logger.error("loud", metadata: ["id": "c1"])
        #expect(out.stderrText == "kvmrun: loud\n")
        let debugLogger = out.logger(.json, debug: true, file: false)
        debugLogger.debug("details")
        #expect(out.stderrText == "kvmrun: debug: details\n")
        #expect(readTextFile(out.path) == nil)
    }

    @Test("A log file that cannot be opened is reported on stderr; logging goes on there")
    func unopenableLog() throws {
        let out = try Destination()
        let logger = RuntimeLogging.makeLogger(logPath: out.directory + "/missing/dir/log", format: .json, debug: false, stderr: out.stderrWrite)
        logger.error("still shown")
        let text = out.stderrText
        #expect(text.hasPrefix("kvmrun: warning: open --log \(out.directory)/missing/dir/log: ENOENT"))
        #expect(text.hasSuffix("kvmrun: still shown\n"))
    }

    @Test("Two loggers on one file append whole lines")
    func appends() throws {
        let out = try Destination()
        out.logger(.json).error("one")
        out.logger(.json).error("two")
        #expect(try out.fileLines.map { try Self.decode($0)["msg"] } == ["one", "two"])
    }

    @Test("bootstrap installs the handler once; a second call returns the first logger")
    func bootstrapOnce() throws {
        // The only test that touches swift-log's process-wide state (nothing else here logs).
        let out = try Destination()
        let first = RuntimeLogging.bootstrap(logPath: out.path, format: .json, debug: false)
        let second = RuntimeLogging.bootstrap(logPath: out.path + ".other", format: .text, debug: true)
        first.info("from the first")
        second.info("from the second")
        Logger(label: "elsewhere").info("any logger made later")
        #expect(try out.fileLines.map { try Self.decode($0)["msg"] } == ["from the first", "from the second", "any logger made later"])
        #expect(readTextFile(out.path + ".other") == nil)
    }

    /// key=value pairs of a logfmt line, values unquoted (\" \\ \n \t escapes).
    static func logfmt(_ line: String) throws -> [(key: String, value: String)] {
        var result: [(key: String, value: String)] = []
        var rest = Substring(line)
        while !rest.isEmpty {
            rest = rest.drop { $0 == " " }
            guard let equals = rest.firstIndex(of: "=") else { throw SystemError(call: "logfmt: no = in \(rest)", errno: EINVAL) }
            let key = String(rest[..<equals])
            rest = rest[rest.index(after: equals)...]
            var value = ""
            if rest.first == "\"" {
                rest = rest.dropFirst()
                while let character = rest.first, character != "\"" {
                    rest = rest.dropFirst()
                    if character == "\\", let escaped = rest.first {
                        rest = rest.dropFirst()
                        value.append(escaped == "n" ? "\n" : escaped == "t" ? "\t" : escaped)
                    } else {
                        value.append(character)
                    }
                }
                rest = rest.dropFirst()
            } else {
                value = String(rest.prefix { $0 != " " })
                rest = rest.dropFirst(value.count)
            }
            result.append((key, value))
        }
        return result
    }
}
