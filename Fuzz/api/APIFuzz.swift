import FuzzSupport
@testable import VMM

// The control API's parsing: HTTP/1.x requests (`HTTPRequestParser`), routing and JSON bodies
// (`APIHandler`, FoundationEssentials' decoder) against a double of the VM, and the CLI's reply
// parser (`HTTPResponseParser`). Input: u8 mode, then bytes. Even modes: the bytes are what a
// client sent (parsed as a request, routed when complete, and parsed as a reply too). Odd modes:
// the bytes are the JSON body of a request to one of the API's resources (mode / 2 picks it),
// so the fuzzer reaches the decoders without having to build the HTTP around them first.

private final class ControlDouble: VMControl {
    var isPaused = false
    var vcpusParked = false
    var hotplugStatus: HotplugStatus?
    var failure: VMMError?

    func info() -> VMInfo {
        VMInfo(state: isPaused ? .paused : .running, vcpus: 2, memoryMib: 128, uptimeMs: 5,
               devices: [DeviceInfo(name: "virtio-blk0", type: "block", mmioBase: "0xd0001000", irq: 5, status: 15)],
               hotplugMemory: hotplugStatus.map(HotplugInfo.init))
    }
    func metrics() -> APIMetrics {
        APIMetrics(devices: ["virtio-blk0": ["read_bytes": 4096]], vcpus: [VcpuMetrics(id: 0, exits: 7)])
    }
    func pause() { isPaused = true }
    func resume() { isPaused = false }
    func setHotplugTarget(bytes: UInt64) throws(VMMError) { if let failure { throw failure } }
    func updateDrive(id: String, path: String) throws(VMMError) { if let failure { throw failure } }
    func sendCtrlAltDel() throws(VMMError) { throw .config("no keyboard") }
    func shutdown() {}
}

private let routes: [(method: String, path: String)] = [
    ("PATCH", "/vm"), ("PATCH", "/hotplug/memory"), ("PATCH", "/drives/rootfs"), ("PUT", "/actions"),
    ("GET", "/vm"), ("GET", "/hotplug/memory"), ("GET", "/metrics"), ("POST", "/vm"),
]

@_cdecl("LLVMFuzzerTestOneInput")
func fuzzAPI(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzBytes(data, size)
    let mode = input.u8()
    let bytes = input.take(input.remaining)
    let control = ControlDouble()
    control.vcpusParked = mode & 0x40 != 0
    control.hotplugStatus = mode & 0x80 != 0 ? HotplugStatus(regionSize: 1 << 30, blockSize: 2 << 20,
                                                             requestedSize: 0, pluggedSize: 0) : nil
    control.failure = mode & 0x20 != 0 ? .config("refused") : nil
    let handler = APIHandler(control: control)
    let request: HTTPRequest
    if mode & 1 == 0 {
        _ = HTTPResponseParser.parse(bytes)
        guard case let .complete(parsed, length) = HTTPRequestParser.parse(bytes) else { return 0 }
        precondition(length <= bytes.count && length <= HTTPRequestParser.maxRequestBytes, "request length \(length)")
        request = parsed
    } else {
        let route = routes[Int(mode >> 1) % routes.count]
        request = HTTPRequest(method: route.method, path: route.path, body: bytes)
    }
    if case let .reply(response) = handler.handle(request) {
        _ = response.serialized
    }
    return 0
}
