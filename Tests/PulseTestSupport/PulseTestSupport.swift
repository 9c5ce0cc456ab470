import Foundation
import Logging

/// A logger for tests: warnings and above to standard error, so failures come with librdkafka's story.
public func quietTestLogger(label: String = "test") -> Logger {
    var logger = Logger(label: label) { label in
        var handler = StreamLogHandler.standardError(label: label)
        handler.logLevel = .warning
        return handler
    }
    logger.logLevel = .warning
    return logger
}

/// Finds a program on `PATH`.
public func findProgram(_ program: String) -> String? {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
    for directory in path.split(separator: ":") {
        let candidate = "\(directory)/\(program)"
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
    }
    return nil
}

/// Runs a program to completion and returns its exit status and standard output.
@discardableResult
public func runProgram(_ path: String, _ arguments: [String], input: String? = nil) throws -> (
    status: Int32, output: String
) {
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

public struct TimedOut: Error, CustomStringConvertible {
    public var description: String
}

/// Polls `condition` until it holds or `timeout` passes. Integration tests wait on a real broker's
/// asynchronous work (group joins, deliveries), so they wait for the state they need, not a fixed time.
public func waitUntil(
    _ what: String,
    timeout: Duration = .seconds(30),
    _ condition: () throws -> Bool
) async throws {
    let deadline = ContinuousClock.now + timeout
    while try !condition() {
        guard ContinuousClock.now < deadline else { throw TimedOut(description: "timed out waiting for \(what)") }
        try await Task.sleep(for: .milliseconds(20))
    }
}
