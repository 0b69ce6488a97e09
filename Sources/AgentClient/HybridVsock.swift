#if canImport(Glibc)
import Glibc
#endif
import Sys

/// Reaching a guest's vsock port through the VMM's hybrid-vsock Unix socket (Firecracker's
/// scheme, README "virtio-vsock"): connect to the socket, send `CONNECT <port>\n`, read
/// `OK <hostport>\n`; from then on the stream is the guest's vsock connection.
public enum HybridVsock {
    /// The vsock port the agent listens on (as Kata's agent does).
    public static let agentPort: UInt32 = 1024
    /// The VMM's answer line is short ("OK 1073741824\n"); longer is not the VMM.
    static let maxReplyBytes = 64

    /// Connects to guest port `port` through the VMM socket at `path`, taking at most `timeout`
    /// for the handshake. Errors name the step that failed.
    public static func connect(path: String, port: UInt32 = agentPort, timeout: Duration = .seconds(5)) throws(AgentError) -> FileDescriptor {
        func failure(_ step: String, _ reason: String) -> AgentError {
            .connect(path: path, port: port, step: step, reason: reason)
        }
        let deadline = MonotonicClock.deadline(after: timeout)
        let fd: FileDescriptor
        do {
            fd = try StreamSocket.connectUnix(path)
        } catch {
            throw failure("connect to the VMM's vsock socket", "\(error)")
        }
        do {
            try StreamSocket.sendAll(fd.raw, Array("CONNECT \(port)\n".utf8), what: "CONNECT to \(path)")
        } catch {
            throw failure("send CONNECT \(port)", "\(error)")
        }
        var line: [UInt8] = []
        var byte = [UInt8](repeating: 0, count: 1)
        // One byte at a time: whatever follows the newline already belongs to the guest.
        while line.last != UInt8(ascii: "\n") {
            guard line.count < maxReplyBytes else {
                throw failure("read the answer to CONNECT \(port)", "more than \(maxReplyBytes) bytes without a newline: \(quoted(line))")
            }
            let step = "read the answer to CONNECT \(port)"
            let ready: Bool
            let count: Int
            do {
                ready = try StreamSocket.waitReadable(fd.raw, deadline: deadline)
                count = ready ? try StreamSocket.receive(fd.raw, into: &byte, what: "the answer from \(path)") : 0
            } catch {
                throw failure(step, "\(error)")
            }
            guard ready else { throw failure(step, "no answer within \(timeout)") }
            guard count == 1 else {
                let got = line.isEmpty ? "" : " after \(quoted(line))"
                throw failure(step, "the VMM closed the connection\(got) (is the guest listening on port \(port)?)")
            }
            line.append(byte[0])
        }
        guard parseOK(line) != nil else {
            throw failure("CONNECT \(port)", "the VMM answered \(quoted(line)) instead of \"OK <port>\"")
        }
        return fd
    }

    /// The host port in an `OK <port>\n` line, nil for anything else.
    static func parseOK(_ line: [UInt8]) -> UInt32? {
        guard let text = String(validating: line, as: UTF8.self), text.hasPrefix("OK "), text.hasSuffix("\n") else { return nil }
        return UInt32(text.dropFirst(3).dropLast())
    }

    static func quoted(_ bytes: [UInt8]) -> String {
        String(decoding: bytes, as: UTF8.self).debugDescription
    }
}
