import Testing
@testable import VMM

/// Plays the VM behind the control API: records what the handler asked for.
final class ControlDouble: VMControl {
    var calls: [String] = []
    var isPaused = false
    var parked = false
    var hotplug: HotplugStatus?
    var failure: VMMError?

    func info() -> VMInfo {
        VMInfo(state: isPaused ? .paused : .running, vcpus: 2, memoryMib: 128, uptimeMs: 5,
               devices: [DeviceInfo(name: "virtio-rng", type: "rng", mmioBase: "0xd0001000", irq: 5, status: 15)])
    }
    func metrics() -> APIMetrics {
        APIMetrics(devices: ["virtio-blk0": ["read_bytes": 4096]], vcpus: [VcpuMetrics(id: 0, exits: 7)])
    }
    func pause() { calls.append("pause"); isPaused = true }
    func resume() { calls.append("resume"); isPaused = false }
    var vcpusParked: Bool { parked }
    func setHotplugTarget(bytes: UInt64) throws(VMMError) {
        calls.append("hotplug \(bytes)")
        if let failure { throw failure }
    }
    var hotplugStatus: HotplugStatus? { hotplug }
    func updateDrive(id: String, path: String) throws(VMMError) {
        calls.append("drive \(id) \(path)")
        if let failure { throw failure }
    }
    func sendCtrlAltDel() throws(VMMError) { throw .config("no keyboard") }
    func shutdown() { calls.append("shutdown") }
}

func request(_ text: String) -> [UInt8] { Array(text.utf8) }

func faultMessage(_ response: HTTPResponse) -> String? {
    (try? APIJSON.decode(APIFault.self, from: response.body))?.faultMessage
}

@Suite("Control API: HTTP request parsing")
struct HTTPParserTests {
    @Test("a GET with headers parses; the query string is dropped; header names are case-insensitive")
    func simpleGet() {
        let bytes = request("GET /vm?verbose=1 HTTP/1.1\r\nHost: x\r\nACCEPT:  application/json \r\n\r\n")
        guard case let .complete(parsed, length) = HTTPRequestParser.parse(bytes) else {
            Issue.record("not complete: \(HTTPRequestParser.parse(bytes))")
            return
        }
        #expect(parsed == HTTPRequest(method: "GET", path: "/vm", headers: ["host": "x", "accept": "application/json"]))
        #expect(length == bytes.count)
    }

    @Test("a body is taken by its Content-Length, and only once all of it arrived")
    func body() {
        let whole = request("PATCH /vm HTTP/1.1\r\nContent-Length: 18\r\n\r\n{\"state\":\"Paused\"}")
        for cut in [10, whole.count - 20, whole.count - 1] {
            #expect(HTTPRequestParser.parse(Array(whole[0..<cut])) == .incomplete, "cut at \(cut)")
        }
        guard case let .complete(parsed, _) = HTTPRequestParser.parse(whole + request("GET / HTTP/1.1")) else {
            Issue.record("not complete")
            return
        }
        #expect(parsed.body == request("{\"state\":\"Paused\"}"))
    }

    static let rejected: [(String, Int)] = [
        ("GARBAGE\r\n\r\n", 400),
        ("GET /vm\r\n\r\n", 400),
        ("get /vm HTTP/1.1\r\n\r\n", 400),
        ("GET vm HTTP/1.1\r\n\r\n", 400),
        ("GET /vm HTTP/2.0\r\n\r\n", 505),
        ("GET /vm HTTP/1.1\r\nNoColonHere\r\n\r\n", 400),
        ("GET /vm HTTP/1.1\r\nBad Name: x\r\n\r\n", 400),
        ("GET /vm HTTP/1.1\r\nX: a\nY: b\r\n\r\n", 400),
        ("GET /v\u{7}m HTTP/1.1\r\n\r\n", 400),
        ("PATCH /vm HTTP/1.1\r\n\r\n{}", 411),
        ("PATCH /vm HTTP/1.1\r\nContent-Length: abc\r\n\r\n", 400),
        ("PATCH /vm HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400),
        ("PATCH /vm HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}", 400),
        ("PATCH /vm HTTP/1.1\r\nContent-Length: 70000\r\n\r\n", 413),
        ("PATCH /vm HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n", 413),
        ("PATCH /vm HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 501),
    ]

    @Test("malformed requests get the right 4xx/5xx", arguments: rejected)
    func malformed(text: String, status: Int) {
        guard case let .failed(error) = HTTPRequestParser.parse(request(text)) else {
            Issue.record("accepted: \(text.debugDescription)")
            return
        }
        #expect(error.status == status, "\(text.debugDescription): \(error.message)")
        #expect(!error.message.isEmpty)
    }

    @Test("a header that never ends is cut off at 8 KiB; non-ASCII bytes are refused")
    func oversizeHeader() {
        let long = request("GET /vm HTTP/1.1\r\nX: ") + [UInt8](repeating: 0x61, count: 9000)
        #expect(HTTPRequestParser.parse(long) == .failed(HTTPError(431, "request header larger than 8192 bytes")))
        let binary: [UInt8] = request("GET /") + [0xFF, 0x00] + request(" HTTP/1.1\r\n\r\n")
        guard case let .failed(error) = HTTPRequestParser.parse(binary) else {
            Issue.record("binary accepted")
            return
        }
        #expect(error.status == 400)
    }

    @Test("random bytes and mutated requests never crash either parser; a whole request fits its buffer")
    func hostileBytes() {
        var seed: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next() -> UInt64 {
            seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return seed >> 33
        }
        let valid = request("PATCH /drives/root HTTP/1.1\r\nContent-Length: 24\r\n\r\n{\"path_on_host\": \"/a\"}")
        let alphabet = request("\r\n :/{}\"0123456789-GETPATCHContent-Length") + [0, 0x7F, 0xFF]
        var completes = 0
        for round in 0..<3000 {
            var bytes: [UInt8]
            if round % 2 == 0 {
                bytes = valid
                for _ in 0..<(1 + Int(next() % 4)) {
                    let index = Int(next() % UInt64(bytes.count))
                    switch next() % 3 {
                    case 0: bytes[index] = alphabet[Int(next() % UInt64(alphabet.count))]
                    case 1: bytes.remove(at: index)
                    default: bytes.insert(alphabet[Int(next() % UInt64(alphabet.count))], at: index)
                    }
                }
            } else {
                bytes = (0..<Int(next() % 200)).map { _ in alphabet[Int(next() % UInt64(alphabet.count))] }
            }
            if case let .complete(_, length) = HTTPRequestParser.parse(bytes) {
                completes += 1
                #expect(length <= bytes.count)
            }
            _ = HTTPResponseParser.parse(bytes)
        }
        #expect(completes > 0, "no mutated request survived: the mutations are too coarse to test anything")
        #expect(HTTPResponseParser.parse(request("HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\nabc")) == nil)
    }

    @Test("responses serialize with Content-Length and Connection: close; the client parser reads them back")
    func responses() {
        let response = APIHandler.fault(HTTPError(405, "nope", allowed: ["GET"]))
        let text = String(decoding: response.serialized, as: UTF8.self)
        #expect(text.hasPrefix("HTTP/1.1 405 Method Not Allowed\r\n"))
        #expect(text.contains("Allow: GET\r\n"))
        #expect(text.contains("Content-Length: \(response.body.count)\r\n"))
        #expect(text.contains("Connection: close\r\n\r\n{\"fault_message\":\"nope\"}"))
        let parsed = HTTPResponseParser.parse(response.serialized)
        #expect(parsed?.status == 405)
        #expect(parsed?.body == response.body)
        #expect(String(decoding: HTTPResponse(status: 204).serialized, as: UTF8.self) == "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
        #expect(HTTPResponseParser.parse(request("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort")) == nil)
    }

    /// Found by the api fuzz target: header end + Content-Length overflowed (an arithmetic trap
    /// in the CLI's reply parser) when the length was near Int.max.
    @Test("a reply whose Content-Length is near Int.max is no reply, not an arithmetic trap")
    func hugeReplyLength() {
        #expect(HTTPResponseParser.parse(request("HTTP/1.1 200 OK\r\nContent-Length: 9223372036854775807\r\n\r\nabc")) == nil)
        #expect(HTTPResponseParser.parse(request("HTTP/1.0 400 X\r\nContent-Length: 9223372036854775790\r\n\r\n")) == nil)
        #expect(HTTPResponseParser.parse(request("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"))?.body == request("abc"))
    }
}

@Suite("Control API: routes and bodies")
struct APIRouteTests {
    func handle(_ control: ControlDouble, _ method: String, _ path: String, _ body: String? = nil) -> HTTPResponse {
        let outcome = APIHandler(control: control).handle(HTTPRequest(method: method, path: path, body: body.map(request) ?? []))
        guard case let .reply(response) = outcome else { return HTTPResponse(status: -1) }
        return response
    }

    @Test("GET / and GET /vm report the VM; GET /metrics the counters")
    func info() throws {
        let control = ControlDouble()
        for path in ["/", "/vm"] {
            let response = handle(control, "GET", path)
            #expect(response.status == 200)
            let info = try APIJSON.decode(VMInfo.self, from: response.body)
            #expect(info == control.info())
            #expect(String(decoding: response.body, as: UTF8.self).contains("\"state\":\"Running\""))
        }
        let metrics = handle(control, "GET", "/metrics")
        #expect(metrics.status == 200)
        #expect(String(decoding: metrics.body, as: UTF8.self) ==
                #"{"devices":{"virtio-blk0":{"read_bytes":4096}},"vcpus":[{"exits":7,"id":0}]}"#)
    }

    static let statusCases: [(String, String, String?, Int)] = [
        ("GET", "/nope", nil, 404),
        ("GET", "/drives", nil, 404),
        ("GET", "/drives/", nil, 404),
        ("GET", "/drives/a/b", nil, 404),
        ("DELETE", "/vm", nil, 405),
        ("POST", "/", nil, 405),
        ("GET", "/actions", nil, 405),
        ("GET", "/drives/root", nil, 405),
        ("PATCH", "/vm", "", 400),
        ("PATCH", "/vm", "{bad json", 400),
        ("PATCH", "/vm", "[1, 2]", 400),
        ("PATCH", "/vm", #"{"stat": "Paused"}"#, 400),
        ("PATCH", "/vm", #"{"state": 1}"#, 400),
        ("PATCH", "/vm", #"{"state": "Sleeping"}"#, 400),
        ("PATCH", "/hotplug/memory", #"{"requested_size_mib": -1}"#, 400),
        ("PATCH", "/hotplug/memory", #"{"requested_size_mib": 18446744073709551615}"#, 400),
        ("PATCH", "/drives/root", #"{"path_on_host": ""}"#, 400),
        ("PATCH", "/drives/root", #"{"drive_id": "other", "path_on_host": "/x"}"#, 400),
        ("PUT", "/actions", #"{"action_type": "Reboot"}"#, 400),
        ("PUT", "/actions", #"{"action_type": "SendCtrlAltDel"}"#, 400),
        ("GET", "/hotplug/memory", nil, 400),
    ]

    @Test("unknown routes 404, wrong methods 405, bad bodies 400 with a fault_message; nothing reaches the VM",
          arguments: statusCases)
    func statuses(method: String, path: String, body: String?, status: Int) {
        let control = ControlDouble()
        let response = handle(control, method, path, body)
        #expect(response.status == status)
        #expect(faultMessage(response)?.isEmpty == false, "body: \(String(decoding: response.body, as: UTF8.self))")
        #expect(control.calls.isEmpty)
        if status == 405 { #expect(response.headers.contains { $0.0 == "Allow" }) }
    }

    @Test("bad JSON and missing fields are named in the fault message")
    func messages() {
        let control = ControlDouble()
        #expect(faultMessage(handle(control, "PATCH", "/vm", "{bad json"))?.hasPrefix("body is not valid JSON") == true)
        #expect(faultMessage(handle(control, "PATCH", "/vm", #"{"stat": "Paused"}"#))?.hasPrefix("missing field 'state'") == true)
        #expect(faultMessage(handle(control, "PATCH", "/hotplug/memory", #"{"requested_size_mib": "1G"}"#))?
            .hasPrefix("field 'requested_size_mib' is not a valid") == true)
    }

    @Test("pause waits for the vCPUs to park; resume answers at once")
    func pauseResume() {
        let control = ControlDouble()
        let handler = APIHandler(control: control)
        let pause = HTTPRequest(method: "PATCH", path: "/vm", body: request(#"{"state": "Paused"}"#))
        #expect(handler.handle(pause) == .replyWhenParked)
        control.parked = true
        #expect(handler.handle(pause) == .reply(HTTPResponse(status: 204)))
        #expect(handle(control, "PATCH", "/vm", #"{"state": "Resumed"}"#).status == 204)
        #expect(control.calls == ["pause", "pause", "resume"])
    }

    @Test("hotplug size in MiB becomes bytes; a VMM refusal is a 400 with its reason")
    func hotplug() throws {
        let control = ControlDouble()
        #expect(handle(control, "PATCH", "/hotplug/memory", #"{"requested_size_mib": 512}"#).status == 204)
        #expect(control.calls == ["hotplug 536870912"])
        control.failure = .config("512 MiB is above the 256 MiB region")
        let refused = handle(control, "PATCH", "/hotplug/memory", #"{"requested_size_mib": 512}"#)
        #expect(refused.status == 400)
        #expect(faultMessage(refused) == "512 MiB is above the 256 MiB region")
        control.hotplug = HotplugStatus(regionSize: 1 << 30, blockSize: 2 << 20, requestedSize: 512 << 20, pluggedSize: 256 << 20)
        let status = handle(control, "GET", "/hotplug/memory")
        #expect(status.status == 200)
        #expect(String(decoding: status.body, as: UTF8.self) ==
                #"{"block_size_mib":2,"plugged_size_mib":256,"requested_size_mib":512,"total_size_mib":1024}"#)
    }

    @Test("drive update passes the id and path through; shutdown reaches the VM")
    func driveAndShutdown() {
        let control = ControlDouble()
        #expect(handle(control, "PATCH", "/drives/root", #"{"drive_id": "root", "path_on_host": "/tmp/a.img"}"#).status == 204)
        #expect(handle(control, "PUT", "/actions", #"{"action_type": "Shutdown"}"#).status == 204)
        #expect(control.calls == ["drive root /tmp/a.img", "shutdown"])
        control.failure = .config("no drive 'x'")
        #expect(faultMessage(handle(control, "PATCH", "/drives/x", #"{"path_on_host": "/y"}"#)) == "no drive 'x'")
    }
}
