import AgentProtocol

// The agent protocol as a peer's bytes reach it: ttRPC framing (incremental, split at every
// chunk size the first byte picks), the server's stream-id rule, the ttrpc.Request and
// ttrpc.Response envelopes, and every request and response message of grpc.AgentService and
// grpc.Health, each decode re-encoded and checked equal (`TTRPCFuzzEntry.consume`, which the
// unit tests also drive). A trap is a crash; a decode error is the input's rejection.

@_cdecl("LLVMFuzzerTestOneInput")
func fuzzTTRPC(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data, size > 0 else { return 0 }
    // SAFETY: libFuzzer passes `size` readable bytes at `data`; they are copied at once.
    TTRPCFuzzEntry.consume(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}
