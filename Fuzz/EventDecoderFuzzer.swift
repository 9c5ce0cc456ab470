// libFuzzer target for the event decoder, compiled together with Sources/PulseCore into one module:
//   make fuzz                      (FUZZ_SECONDS=600 for a longer run; `make test` runs a short one)
// Any bytes must decode to an event or a rejection, never crash or trip AddressSanitizer, and decode the
// same way twice.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzEventDecoder(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    let decoder = EventDecoder()
    let first = decoder.decode(bytes, nowMillis: 1_795_687_200_000)
    let second = decoder.decode(bytes, nowMillis: 1_795_687_200_000)
    precondition(first == second, "decoding is not deterministic")
    if case .success(let event) = first {
        precondition(!event.eventID.isEmpty && !event.subjectID.isEmpty && !event.userID.isEmpty)
    }
    var replay = Replay(sourceName: "fuzz")
    for line in replay.feed(bytes, offset: 0) { _ = line.render() }
    return 0
}
