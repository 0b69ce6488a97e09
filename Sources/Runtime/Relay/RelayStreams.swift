// The relay's stdio threads: each output stream read to end-of-file from the agent and written
// to the engine's descriptor (or the pty), the engine's input written to the process's stdin.
#if canImport(Glibc)
import Glibc
#endif
import AgentClient
import AgentProtocol
import FoundationEssentials

extension RelaySession {
    func pumpOutput(stderr: Bool, to fd: Int32) {
        var request = Grpc_ReadStreamRequest()
        request.containerID = config.containerID
        request.execID = config.execID
        request.len = Self.readLength
        var writable = true
        while true {
            let data: Data
            do {
                data = stderr ? try client.readStderr(request).data : try client.readStdout(request).data
            } catch {
                if !closing.load(ordering: .sequentiallyConsistent), case .call = error {
                    complain("\(stderr ? "stderr" : "stdout"): \(error)")
                }
                return
            }
            if data.isEmpty { return }
            // Once the engine's end is closed the output is read on and dropped, so the
            // process never blocks on a full pipe nobody empties.
            if writable { writable = RelayIO.writeAll(fd, [UInt8](data), stop: stop) }
        }
    }

    func pumpInput(from fd: Int32, closeAtEnd: Bool) {
        var request = Grpc_WriteStreamRequest()
        request.containerID = config.containerID
        request.execID = config.execID
        while let bytes = RelayIO.read(fd, count: Int(Self.readLength), stop: stop) {
            request.data = Data(bytes)
            // No time limit: a process that does not read its stdin holds the write up.
            do {
                _ = try client.writeStdin(request, timeout: .unlimited)
            } catch {
                return   // stdin closed, the process gone, or the relay winding down
            }
        }
        if closeAtEnd, !stop.fired { closeStdin() }
    }

    func closeStdin() {
        var request = Grpc_CloseStdinRequest()
        request.containerID = config.containerID
        request.execID = config.execID
        do {
            try client.closeStdin(request)
        } catch {
            if !gone(error) { complain("close stdin: \(error)") }
        }
    }
}
