/// Parses HTTP/1.x requests from the bytes a client has sent so far. Stateless: the server calls
/// it again with the whole buffer each time more bytes arrive (requests are at most 64 KiB).
/// Strict where it matters for a control socket: CRLF line ends, an ASCII request line,
/// `Content-Length` bodies only (no chunked encoding), bounded header and body sizes.
public enum HTTPRequestParser {
    public static let maxRequestBytes = 64 * 1024
    public static let maxHeaderBytes = 8 * 1024
    public static let maxHeaderCount = 64

    public enum Outcome: Equatable, Sendable {
        /// More bytes are needed.
        case incomplete
        /// A whole request; `length` bytes of the buffer belong to it.
        case complete(HTTPRequest, length: Int)
        case failed(HTTPError)
    }

    public static func parse(_ buffer: [UInt8]) -> Outcome {
        guard let headerEnd = endOfHeader(in: buffer) else {
            if buffer.count > maxHeaderBytes {
                return .failed(HTTPError(431, "request header larger than \(maxHeaderBytes) bytes"))
            }
            return .incomplete
        }
        guard headerEnd <= maxHeaderBytes else {
            return .failed(HTTPError(431, "request header larger than \(maxHeaderBytes) bytes"))
        }
        let head: (method: String, path: String, headers: [String: String])
        switch parseHead(buffer[0..<headerEnd]) {
        case let .success(parsed): head = parsed
        case let .failure(error): return .failed(error)
        }
        let bodyStart = headerEnd + 4
        let length: Int
        switch contentLength(head.headers, method: head.method) {
        case let .success(value): length = value
        case let .failure(error): return .failed(error)
        }
        guard length <= maxRequestBytes - bodyStart else {
            return .failed(HTTPError(413, "request of \(bodyStart + length) bytes is larger than the \(maxRequestBytes)-byte limit"))
        }
        guard buffer.count >= bodyStart + length else { return .incomplete }
        let request = HTTPRequest(method: head.method, path: head.path, headers: head.headers,
                                  body: Array(buffer[bodyStart..<(bodyStart + length)]))
        return .complete(request, length: bodyStart + length)
    }

    /// Index of the "\r\n\r\n" that ends the header, if present.
    static func endOfHeader(in buffer: [UInt8]) -> Int? {
        guard buffer.count >= 4 else { return nil }
        for index in 0...(buffer.count - 4)
        where buffer[index] == 13 && buffer[index + 1] == 10 && buffer[index + 2] == 13 && buffer[index + 3] == 10 {
            return index
        }
        return nil
    }

    static func parseHead(_ bytes: ArraySlice<UInt8>) -> Result<(method: String, path: String, headers: [String: String]), HTTPError> {
        // Only printable ASCII, tabs and CRLF pairs belong in a request head.
        if let bad = bytes.first(where: { !($0 >= 0x20 && $0 < 0x7F) && $0 != 9 && $0 != 13 && $0 != 10 }) {
            return .failure(HTTPError(400, "request header contains the byte 0x\(String(bad, radix: 16)), which HTTP does not allow there"))
        }
        let lines = String(decoding: bytes, as: UTF8.self).split(separator: "\r\n", omittingEmptySubsequences: false)
        if lines.contains(where: { $0.contains("\r") || $0.contains("\n") }) {
            return .failure(HTTPError(400, "bare CR or LF in the request header (lines end with CRLF)"))
        }
        guard let requestLine = lines.first, !requestLine.isEmpty else {
            return .failure(HTTPError(400, "empty request line"))
        }
        let parts = requestLine.split(separator: " ", omittingEmptySubsequences: false)
        guard parts.count == 3 else {
            return .failure(HTTPError(400, "malformed request line '\(requestLine.prefix(80))' (expected METHOD PATH HTTP/1.1)"))
        }
        let method = String(parts[0])
        guard !method.isEmpty, method.allSatisfy({ $0 >= "A" && $0 <= "Z" }) else {
            return .failure(HTTPError(400, "malformed method '\(method.prefix(20))'"))
        }
        guard parts[1].hasPrefix("/") else {
            return .failure(HTTPError(400, "request target must be an absolute path (got '\(parts[1].prefix(80))')"))
        }
        guard parts[2] == "HTTP/1.1" || parts[2] == "HTTP/1.0" else {
            return .failure(HTTPError(505, "unsupported protocol '\(parts[2].prefix(20))' (HTTP/1.1 or HTTP/1.0 only)"))
        }
        let path = String(parts[1].split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)[0])

        var headers: [String: String] = [:]
        let fields = lines.dropFirst()
        guard fields.count <= maxHeaderCount else {
            return .failure(HTTPError(431, "more than \(maxHeaderCount) header fields"))
        }
        for line in fields {
            guard let colon = line.firstIndex(of: ":") else {
                return .failure(HTTPError(400, "malformed header line '\(line.prefix(80))' (no colon)"))
            }
            let name = line[..<colon]
            guard !name.isEmpty, !name.contains(" "), !name.contains("\t") else {
                return .failure(HTTPError(400, "malformed header name '\(name.prefix(80))'"))
            }
            let value = line[line.index(after: colon)...].trimmingCharacters(" \t")
            let key = name.lowercased()
            if let previous = headers[key] {
                guard key != "content-length" || previous == value else {
                    return .failure(HTTPError(400, "conflicting Content-Length headers"))
                }
                headers[key] = previous + ", " + value
            } else {
                headers[key] = value
            }
        }
        return .success((method, path, headers))
    }

    /// The body length: Content-Length when present (decimal digits only); 0 for methods that
    /// take no body; 411 for PUT/PATCH/POST without one. Chunked bodies are not supported.
    static func contentLength(_ headers: [String: String], method: String) -> Result<Int, HTTPError> {
        if headers["transfer-encoding"] != nil {
            return .failure(HTTPError(501, "Transfer-Encoding is not supported; send a Content-Length body"))
        }
        guard let text = headers["content-length"] else {
            if ["PUT", "PATCH", "POST"].contains(method) {
                return .failure(HTTPError(411, "\(method) needs a Content-Length header"))
            }
            return .success(0)
        }
        guard !text.isEmpty, text.count <= 9, text.allSatisfy({ $0 >= "0" && $0 <= "9" }), let value = Int(text) else {
            if !text.isEmpty, text.allSatisfy({ $0 >= "0" && $0 <= "9" }) {
                return .failure(HTTPError(413, "Content-Length \(text.prefix(30)) is larger than the \(maxRequestBytes)-byte limit"))
            }
            return .failure(HTTPError(400, "Content-Length '\(text.prefix(30))' is not a decimal number"))
        }
        return .success(value)
    }
}

/// Parses the reply of the control API for the CLI client: the status, and the body up to the
/// Content-Length (or to the end of the bytes when there is none).
public enum HTTPResponseParser {
    public static func parse(_ bytes: [UInt8]) -> HTTPResponse? {
        guard let headerEnd = HTTPRequestParser.endOfHeader(in: bytes) else { return nil }
        let lines = String(decoding: bytes[0..<headerEnd], as: UTF8.self).split(separator: "\r\n")
        guard let statusLine = lines.first else { return nil }
        let parts = statusLine.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let status = Int(parts[1]) else { return nil }
        var headers: [(String, String)] = []
        var length: Int?
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { return nil }
            let name = String(line[..<colon]), value = line[line.index(after: colon)...].trimmingCharacters(" \t")
            headers.append((name, value))
            if name.lowercased() == "content-length" { length = Int(value) }
        }
        let bodyStart = headerEnd + 4
        // A negative length, or one past the bytes received (compared without adding: any
        // Int parses, up to Int.max), is no reply.
        if let length, length < 0 || length > bytes.count - bodyStart { return nil }
        let end = length.map { bodyStart + $0 } ?? bytes.count
        return HTTPResponse(status: status, headers: headers, body: Array(bytes[bodyStart..<end]))
    }
}

extension Substring {
    func trimmingCharacters(_ set: String) -> String {
        var text = self
        while let first = text.first, set.contains(first) { text = text.dropFirst() }
        while let last = text.last, set.contains(last) { text = text.dropLast() }
        return String(text)
    }
}
