#if canImport(Glibc)
import Glibc
#endif
import CKVM
import Sys
import Logging

/// The control API's socket server, a subscriber of the VMM's event loop: accepts clients on a
/// non-blocking Unix socket, reads one request each (at most 64 KiB), answers it and closes the
/// connection. Nothing here blocks: reads and writes stop at EAGAIN, and a pause is answered
/// when the vCPUs report (through `parkedEvent`) that they have parked.
final class APIServer {
    static let maxClients = 16
    static let epollOut: UInt32 = 0x004

    final class Client {
        let fd: FileDescriptor
        var token: UInt64 = 0
        var input: [UInt8] = []
        var output: [UInt8] = []
        var written = 0
        var waitingForPark = false
        init(fd: FileDescriptor) { self.fd = fd }
        /// Still reading its request: the one to drop when too many clients are connected.
        var idle: Bool { output.isEmpty && !waitingForPark }
    }

    let path: String
    private let listener: FileDescriptor
    private let inode: ino_t
    /// Written by vCPU threads when they park (an eventfd).
    let parkedEvent: FileDescriptor
    private let handler: APIHandler
    private let control: any VMControl
    private let loop: EventLoop
    private let logger: Logger
    /// Connected clients in the order they came.
    private var clients: [Client] = []
    private var tokens: [UInt64] = []
    private var closed = false

    init(path: String, control: any VMControl, loop: EventLoop, logger: Logger) throws {
        self.path = path
        self.control = control
        self.loop = loop
        self.logger = logger
        handler = APIHandler(control: control)
        (listener, inode) = try UnixSocket.listen(path, option: "--api-socket")
        do {
            parkedEvent = FileDescriptor(try sys("eventfd for the API's pause replies") { kvmrun_eventfd() })
            tokens.append(try loop.subscribe(fd: listener.raw) { [unowned self] _ in self.acceptClients() })
            tokens.append(try loop.subscribe(fd: parkedEvent.raw) { [unowned self] _ in self.vcpusParked() })
        } catch {
            unlink(path)
            throw error
        }
    }

    /// Stops serving: drops every client, closes the socket and removes its file (if it is still ours).
    func close() {
        guard !closed else { return }
        closed = true
        for client in clients { drop(client) }
        for token in tokens { loop.unsubscribe(token) }
        listener.close()
        var info = stat()
        if stat(path, &info) == 0 && info.st_ino == inode { unlink(path) }
    }

    private func acceptClients() {
        while true {
            let raw = accept(listener.raw, nil, nil)
            guard raw >= 0 else {
                if errno == EINTR { continue }
                if errno != EAGAIN && errno != EWOULDBLOCK { logger.warning("control API: accept on \(path): \(SystemError(call: "accept", errno: errno))") }
                return
            }
            let client = Client(fd: FileDescriptor(raw))
            _ = fcntl(raw, F_SETFD, FD_CLOEXEC)
            guard fcntl(raw, F_SETFL, O_NONBLOCK) == 0 else {
                logger.warning("control API: \(SystemError(call: "fcntl O_NONBLOCK on an API client", errno: errno))")
                continue
            }
            if clients.count >= APIServer.maxClients {
                // Make room by dropping the oldest client that has not sent a whole request.
                guard let oldest = clients.first(where: { $0.idle }) else {
                    reply(client, APIHandler.fault(HTTPError(503, "too many API clients (at most \(APIServer.maxClients))")), subscribed: false)
                    continue
                }
                drop(oldest)
            }
            do {
                client.token = try loop.subscribe(fd: raw, events: EventLoop.readable) { [unowned self, client] _ in
                    self.readRequest(client)
                }
                clients.append(client)
            } catch {
                logger.warning("control API: \(error)")
            }
        }
    }

    private func readRequest(_ client: Client) {
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        var ended = false
        while true {
            // SAFETY: reads at most chunk.count bytes into the local buffer.
            let count = read(client.fd.raw, &chunk, chunk.count)
            if count < 0 && errno == EINTR { continue }
            if count < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { break }
            // End of input (a client may shut down its sending side after the request) or an error.
            guard count > 0 else { ended = true; break }
            client.input += chunk[0..<count]
            if client.input.count > HTTPRequestParser.maxRequestBytes { break }
        }
        switch HTTPRequestParser.parse(client.input) {
        case .incomplete:
            if ended {
                drop(client)  // gone before sending a whole request: nobody to answer
            } else if client.input.count > HTTPRequestParser.maxRequestBytes {
                respond(client, APIHandler.fault(HTTPError(413, "request larger than \(HTTPRequestParser.maxRequestBytes) bytes")))
            }
        case let .failed(error):
            respond(client, APIHandler.fault(error))
        case let .complete(request, _):
            switch handler.handle(request) {
            case let .reply(response):
                respond(client, response)
            case .replyWhenParked:
                loop.unsubscribe(client.token)
                client.waitingForPark = true
            }
            completePauses()  // a resume may have cancelled pauses still waiting
        }
    }

    /// A vCPU parked: answer the pauses waiting for all of them.
    private func vcpusParked() {
        var count: UInt64 = 0
        // SAFETY: reads the 8-byte eventfd counter into a local.
        _ = read(parkedEvent.raw, &count, 8)
        completePauses()
    }

    private func completePauses() {
        guard control.vcpusParked || !control.isPaused else { return }
        for client in clients where client.waitingForPark {
            client.waitingForPark = false
            reply(client, HTTPResponse(status: 204), subscribed: false)
        }
    }

    private func respond(_ client: Client, _ response: HTTPResponse) {
        loop.unsubscribe(client.token)
        reply(client, response, subscribed: false)
    }

    /// Writes what the socket takes now; the rest when it becomes writable. Closes when done.
    private func reply(_ client: Client, _ response: HTTPResponse, subscribed: Bool) {
        if client.output.isEmpty { client.output = response.serialized }
        while client.written < client.output.count {
            let count = client.output.withUnsafeBytes { bytes in
                // SAFETY: written < count, so the pointer and length stay inside the array.
                send(client.fd.raw, bytes.baseAddress! + client.written, bytes.count - client.written, Int32(MSG_NOSIGNAL))
            }
            if count > 0 { client.written += count; continue }
            if count < 0 && errno == EINTR { continue }
            if count < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) {
                guard !subscribed else { return }
                if let token = try? loop.subscribe(fd: client.fd.raw, events: APIServer.epollOut, { [unowned self, client] _ in
                    self.reply(client, response, subscribed: true)
                }) {
                    client.token = token
                    if !clients.contains(where: { $0 === client }) { clients.append(client) }
                    return
                }
            }
            break  // the client went away or cannot be waited for: nothing more to do
        }
        drop(client)
    }

    private func drop(_ client: Client) {
        if client.token != 0 { loop.unsubscribe(client.token) }
        client.token = 0
        clients.removeAll { $0 === client }
        client.fd.close()
    }
}
