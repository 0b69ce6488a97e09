// The pipes of a process without a terminal: the child's ends go into the SpawnRequest, the
// agent keeps the others as streams. With a terminal the pty master arrives after launch.
#if canImport(Glibc)
import Glibc
#endif
import CAgent
import Sys

struct ProcessIO {
    private var childEnds: [Int32] = []
    private var agentEnds: [Int32] = []

    /// Pipes for `request` unless it asks for a terminal.
    static func prepare(_ request: inout SpawnRequest) throws(AgentError) -> ProcessIO {
        var io = ProcessIO()
        guard case .fds = request.stdio else { return io }
        var fds: [Int32] = []
        for _ in 0..<3 {
            var pair: [Int32] = [-1, -1]
            guard kvmrun_pipe2(&pair, O_CLOEXEC) == 0 else {
                let code = errno
                for fd in fds { close(fd) }
                throw AgentError(SystemError(call: "pipe2", errno: code), while: "process stdio")
            }
            fds += pair
        }
        // stdin: the child reads [0], we write [1]; stdout and stderr: the child writes.
        io.childEnds = [fds[0], fds[3], fds[5]]
        io.agentEnds = [fds[1], fds[2], fds[4]]
        request.stdio = .fds(stdin: fds[0], stdout: fds[3], stderr: fds[5])
        return io
    }

    /// After launch: close the child's ends (it has its own copies).
    func closeChildEnds() { for fd in childEnds { close(fd) } }

    /// On a failed launch: close everything.
    func closeAll() {
        closeChildEnds()
        closeAgentEnds()
    }

    func closeAgentEnds() { for fd in agentEnds { close(fd) } }

    /// The agent's streams: over the pipes, or over `console` (the pty master) when there
    /// is one. Takes ownership of the fds.
    func streams(console: Int32) throws(AgentError) -> (InputStream?, OutputStream?, OutputStream?) {
        do throws(SystemError) {
            if console >= 0 {
                let writer = dup(console)
                guard writer >= 0 else { throw SystemError(call: "dup pty master", errno: errno) }
                _ = fcntl(writer, F_SETFD, FD_CLOEXEC)
                return (try InputStream(fd: writer, terminal: true), try OutputStream(fd: console), nil)
            }
            guard agentEnds.count == 3 else { return (nil, nil, nil) }
            return (try InputStream(fd: agentEnds[0], terminal: false), try OutputStream(fd: agentEnds[1]), try OutputStream(fd: agentEnds[2]))
        } catch {
            throw AgentError(error, while: "process stdio")
        }
    }
}
