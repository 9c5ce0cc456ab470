import Foundation
import Logging
import PulseCore
import PulseTestSupport

let daemonTestLogger = quietTestLogger()

struct MissingBinary: Error, CustomStringConvertible {
    var description: String
}

/// The `crowdpulse` executable built alongside the tests (`swift test` builds every product), or
/// `$CROWDPULSE_BIN`.
func crowdpulseBinary() throws -> String {
    if let explicit = ProcessInfo.processInfo.environment["CROWDPULSE_BIN"] { return explicit }
    let testBinary = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
    var directory = testBinary.deletingLastPathComponent()
    // Inside `X.xctest/` on some layouts: step out of the bundle.
    if directory.lastPathComponent.hasSuffix(".xctest") { directory.deleteLastPathComponent() }
    let candidate = directory.appendingPathComponent("crowdpulse").path
    guard FileManager.default.isExecutableFile(atPath: candidate) else {
        throw MissingBinary(description: "no crowdpulse executable at \(candidate); build it or set CROWDPULSE_BIN")
    }
    return candidate
}

/// The final metric records `crowdpulse replay` makes of `events` (one partition, no wall clock), by key.
func replayMetrics(_ events: [SyntheticEvents.Event]) -> [String: String] {
    var replay = Replay(sourceName: "test")
    var expected: [String: String] = [:]
    for event in events {
        let lines = Array(event.json.utf8).withUnsafeBytes { replay.feed($0, offset: 0) }
        for line in lines where line.topic == "metrics" {
            if case .json(let value) = line.value { expected[line.key!] = value }
        }
    }
    for line in replay.finish() where line.topic == "metrics" {
        if case .json(let value) = line.value { expected[line.key!] = value }
    }
    return expected
}
