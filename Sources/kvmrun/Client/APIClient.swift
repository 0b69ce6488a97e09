import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif
import Sys
import VMM

/// The `--api-socket` option every client subcommand takes.
struct APISocketOption: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The control API socket of a running VM (its 'vm run --api-socket').", valueName: "path"))
    var apiSocket: String
}

/// One HTTP request over the VM's control socket: connect, send, read the reply until the
/// server closes. Prints the JSON reply; a 4xx/5xx or a missing socket ends kvmrun with status 1
/// and the fault message.
enum APIClient {
    static let timeoutSeconds = 30

    static func call(_ socket: String, _ method: String, _ path: String, body: [UInt8]? = nil) throws {
        let response: HTTPResponse
        do {
            response = try exchange(socket, method, path, body: body)
        } catch let error as SystemError {
            let hint = error.errno == ENOENT || error.errno == ECONNREFUSED ? " (is a VM running with --api-socket \(socket)?)" : ""
            fail("control API at \(socket): \(error)\(hint)", status: 1)
        }
        if response.status >= 400 {
            let message = (try? APIJSON.decode(APIFault.self, from: response.body))?.faultMessage
                ?? String(decoding: response.body, as: UTF8.self)
            fail("\(method) \(path): \(response.status) \(HTTPResponse.reason(response.status)): \(message)", status: 1)
        }
        if !response.body.isEmpty { print(String(decoding: response.body, as: UTF8.self)) }
    }

    static func exchange(_ socket: String, _ method: String, _ path: String, body: [UInt8]?) throws -> HTTPResponse {
        let fd = try UnixSocket.connect(socket)
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        _ = setsockopt(fd.raw, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var head = "\(method) \(path) HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
        if let body { head += "Content-Type: application/json\r\nContent-Length: \(body.count)\r\n" }
        let request = Array((head + "\r\n").utf8) + (body ?? [])
        var sent = 0
        while sent < request.count {
            let count = try sys("send to \(socket)") {
                request.withUnsafeBytes { bytes in
                    // SAFETY: sent < count, so the pointer and length stay inside the array.
                    send(fd.raw, bytes.baseAddress! + sent, bytes.count - sent, Int32(MSG_NOSIGNAL))
                }
            }
            sent += count
        }
        var reply: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            // SAFETY: reads at most chunk.count bytes into the local buffer.
            let count = try sys("read the reply from \(socket)") { read(fd.raw, &chunk, chunk.count) }
            if count == 0 { break }
            reply += chunk[0..<count]
        }
        guard let response = HTTPResponseParser.parse(reply) else {
            throw SystemError(call: "parse the reply from \(socket) (\(reply.count) bytes, not HTTP)", errno: EPROTO)
        }
        return response
    }
}
