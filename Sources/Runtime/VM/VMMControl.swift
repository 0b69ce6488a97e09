#if canImport(Glibc)
import Glibc
#endif
import FoundationEssentials
import Sys

/// The sandbox VMM's control API (docs/api.yaml) from the runtime: one HTTP/1.1 request per
/// connection over its Unix socket, JSON bodies.
public struct VMMControl: Sendable {
    public let socket: String
    public var timeoutSeconds = 30

    public init(socket: String) { self.socket = socket }

    public struct HotplugStatus: Codable, Sendable {
        public var total_size_mib: UInt64
        public var block_size_mib: UInt64
        public var requested_size_mib: UInt64
        public var plugged_size_mib: UInt64
    }

    public func hotplugStatus() throws(RuntimeError) -> HotplugStatus {
        try decode(HotplugStatus.self, request("GET", "/hotplug/memory"), step: "read the VM's hotplug memory")
    }

    public func requestHotplug(mib: UInt64) throws(RuntimeError) {
        _ = try request("PATCH", "/hotplug/memory", body: "{\"requested_size_mib\":\(mib)}")
    }

    public func swapDrive(_ driveID: String, to path: String) throws(RuntimeError) {
        let body = try encode(["drive_id": driveID, "path_on_host": path])
        _ = try request("PATCH", "/drives/\(driveID)", body: body)
    }

    public func setPaused(_ paused: Bool) throws(RuntimeError) {
        _ = try request("PATCH", "/vm", body: paused ? "{\"state\":\"Paused\"}" : "{\"state\":\"Resumed\"}")
    }

    public func shutdown() throws(RuntimeError) {
        _ = try request("PUT", "/actions", body: "{\"action_type\":\"Shutdown\"}")
    }

    /// Sends one request; a status of 400 or more is an error carrying the VMM's fault message.
    public func request(_ method: String, _ path: String, body: String? = nil) throws(RuntimeError) -> [UInt8] {
        let step = "VMM API \(method) \(path)"
        let fd: FileDescriptor
        do { fd = try StreamSocket.connectUnix(socket) } catch {
            throw .failed(step: step, reason: "\(error) (is the sandbox's VMM running?)")
        }
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        _ = setsockopt(fd.raw, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let payload = Array((body ?? "").utf8)
        var head = "\(method) \(path) HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
        if body != nil { head += "Content-Type: application/json\r\nContent-Length: \(payload.count)\r\n" }
        let bytes = Array((head + "\r\n").utf8) + payload
        do { try StreamSocket.sendAll(fd.raw, bytes, what: step) } catch { throw .failed(step: step, reason: "\(error)") }
        var reply: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16384)
        while true {
            // SAFETY: reads at most chunk.count bytes into the local buffer.
            let count = read(fd.raw, &chunk, chunk.count)
            if count < 0 && errno == EINTR { continue }
            if count < 0 { throw .failed(step: step, reason: "read: \(errnoText())") }
            if count == 0 { break }
            reply += chunk[0..<count]
        }
        guard let status = VMMControl.status(of: reply) else {
            throw .failed(step: step, reason: "not an HTTP reply (\(reply.count) bytes)")
        }
        let content = VMMControl.body(of: reply)
        guard status < 400 else {
            let fault = (try? JSONDecoder().decode([String: String].self, from: Data(content)))?["fault_message"]
            throw .failed(step: step, reason: "\(status): \(fault ?? String(decoding: content, as: UTF8.self))")
        }
        return content
    }

    static func status(of reply: [UInt8]) -> Int? {
        let line = reply.prefix { $0 != 0x0d && $0 != 0x0a }
        let parts = line.split(separator: 0x20)
        guard parts.count >= 2, parts[0].starts(with: Array("HTTP/1.".utf8)) else { return nil }
        return Int(String(decoding: parts[1], as: UTF8.self))
    }

    static func body(of reply: [UInt8]) -> [UInt8] {
        let separator: [UInt8] = [0x0d, 0x0a, 0x0d, 0x0a]
        guard reply.count >= 4 else { return [] }
        for index in 0...(reply.count - 4) where Array(reply[index..<index + 4]) == separator {
            return Array(reply[(index + 4)...])
        }
        return []
    }

    private func decode<T: Decodable>(_ type: T.Type, _ bytes: [UInt8], step: String) throws(RuntimeError) -> T {
        do { return try JSONDecoder().decode(T.self, from: Data(bytes)) } catch {
            throw .failed(step: step, reason: "unexpected reply: \(String(decoding: bytes, as: UTF8.self))")
        }
    }

    private func encode(_ value: [String: String]) throws(RuntimeError) -> String {
        do { return String(decoding: try JSONEncoder().encode(value), as: UTF8.self) } catch {
            throw .failed(step: "encode a VMM API request", reason: "\(error)")
        }
    }
}
