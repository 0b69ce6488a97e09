#if canImport(Glibc)
import Glibc
#endif

/// A post-mortem aid for guest triple faults (issue 7): kvm_amd wipes a vCPU's state before it
/// reports KVM_EXIT_SHUTDOWN, so what led there is only in the host's kvm trace events. With
/// `KVMRUN_TRACE_STOP=PATH` (a tracefs `tracing_on` file) the vCPU thread that sees the
/// shutdown writes "0" there at once, freezing the trace ring with the guest's last exits and
/// injected exceptions, and names its thread id (the trace's pid) on stderr.
/// `scripts/trace-faults` drives it.
enum FaultTrace {
    private static let stopPath: String? = {
        guard let value = getenv("KVMRUN_TRACE_STOP") else { return nil }
        let path = String(cString: value)
        return path.isEmpty ? nil : path
    }()

    static func shutdownSeen(vcpu: UInt32) {
        guard let stopPath else { return }
        let fd = open(stopPath, O_WRONLY | O_CLOEXEC)
        if fd >= 0 {
            var zero: UInt8 = 0x30
            // SAFETY: writes the one local byte.
            _ = write(fd, &zero, 1)
            close(fd)
        }
        var line = Array("kvmrun: trace stopped: KVM_EXIT_SHUTDOWN on vCPU \(vcpu), thread \(threadID())\n".utf8)
        // SAFETY: writes the local byte array.
        _ = write(STDERR_FILENO, &line, line.count)
    }

    /// This thread's id, from /proc/thread-self ("PID/task/TID"; Swift cannot call the
    /// variadic syscall(2), and Glibc's gettid is not imported).
    private static func threadID() -> String {
        var buffer = [CChar](repeating: 0, count: 64)
        // SAFETY: readlink writes at most count - 1 bytes into the local buffer, which stays NUL-terminated.
        let length = readlink("/proc/thread-self", &buffer, buffer.count - 1)
        guard length > 0 else { return "?" }
        let text = String(decoding: buffer.prefix(length).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return text.split(separator: "/").last.map(String.init) ?? "?"
    }
}
