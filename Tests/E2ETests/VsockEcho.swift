#if canImport(Glibc)
import Glibc
#endif

/// An echo server on a Unix socket for the 32-stream test: one thread of poll(2) over the
/// listener and every accepted stream, echoing each stream until the guest ends it.
struct VsockEchoServer {
    struct Report {
        var accepted = 0
        var completed = 0
        var echoedBytes = 0
    }

    private final class Stream {
        let fd: Int32
        var pending: [UInt8] = []
        var ended = false
        init(fd: Int32) { self.fd = fd }
    }

    /// Serves until `expected` streams were accepted and all of them ended, or `seconds` passed
    /// without any activity.
    static func serve(listener: Int32, expected: Int, idleSeconds: Int32) -> Report {
        var report = Report()
        var streams: [Stream] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while report.accepted < expected || !streams.isEmpty {
            var entries = [pollfd(fd: listener, events: Int16(POLLIN), revents: 0)]
            for stream in streams {
                let events = (stream.ended ? 0 : POLLIN) | (stream.pending.isEmpty ? 0 : POLLOUT)
                entries.append(pollfd(fd: stream.fd, events: Int16(events), revents: 0))
            }
            guard poll(&entries, nfds_t(entries.count), idleSeconds * 1000) > 0 else { break }
            if entries[0].revents & Int16(POLLIN) != 0 {
                let fd = accept(listener, nil, nil)
                if fd >= 0 {
                    _ = fcntl(fd, F_SETFL, O_NONBLOCK)
                    streams.append(Stream(fd: fd))
                    report.accepted += 1
                }
            }
            for (index, stream) in zip(streams.indices, streams) where entries.count > index + 1 {
                let revents = entries[index + 1].revents
                if revents & Int16(POLLIN | POLLHUP | POLLERR) != 0 && !stream.ended {
                    // SAFETY: reads at most buffer.count bytes into the local buffer.
                    let count = read(stream.fd, &buffer, buffer.count)
                    if count > 0 { stream.pending += buffer[0..<count] } else if count == 0 || errno != EAGAIN { stream.ended = true }
                }
                if !stream.pending.isEmpty {
                    // SAFETY: sends from the stream's own pending bytes.
                    let sent = stream.pending.withUnsafeBytes { send(stream.fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                    if sent > 0 {
                        stream.pending.removeFirst(sent)
                        report.echoedBytes += sent
                    } else if sent < 0 && errno != EAGAIN {
                        stream.pending.removeAll()
                        stream.ended = true
                    }
                }
            }
            for stream in streams where stream.ended && stream.pending.isEmpty {
                close(stream.fd)
                report.completed += 1
            }
            streams.removeAll { $0.ended && $0.pending.isEmpty }
        }
        for stream in streams { close(stream.fd) }
        return report
    }
}
