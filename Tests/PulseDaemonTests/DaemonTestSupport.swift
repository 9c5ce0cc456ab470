import Foundation
import Logging
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
