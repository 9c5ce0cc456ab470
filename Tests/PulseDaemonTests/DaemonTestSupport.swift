import Foundation
import Logging

let daemonTestLogger: Logger = {
    var logger = Logger(label: "test") { label in
        var handler = StreamLogHandler.standardError(label: label)
        handler.logLevel = .warning
        return handler
    }
    logger.logLevel = .warning
    return logger
}()

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

func findProgram(_ program: String) -> String? {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
    for directory in path.split(separator: ":") {
        let candidate = "\(directory)/\(program)"
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
    }
    return nil
}

/// Runs a program to completion and returns its exit status and standard output.
func runProgram(_ path: String, _ arguments: [String], input: String? = nil) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    let output = Pipe()
    process.standardOutput = output
    process.standardError = FileHandle.standardError
    let inputPipe = Pipe()
    process.standardInput = input == nil ? FileHandle.nullDevice : inputPipe
    try process.run()
    if let input {
        inputPipe.fileHandleForWriting.write(Data(input.utf8))
        try inputPipe.fileHandleForWriting.close()
    }
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}
