import ArgumentParser
import Foundation
import PulseCore
import PulseDaemon

/// `crowdpulse replay FILE.ndjson`: the same engine over a file, output records as JSON lines on stdout.
struct ReplayCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Run newline-delimited JSON events through the pipeline offline; print output records as JSON lines.",
        discussion: """
            Every output record becomes one line on stdout: {"topic": "deadletter"|…, "key": …, "headers": {…}, \
            "value": …}. Blank lines are skipped; the file is one partition and a record's offset is its line \
            number. There is no wall clock: event time drives everything. A summary goes to stderr.
            """
    )

    @Argument(help: "Input file of one JSON event per line, or - for standard input.")
    var file: String

    @Option(help: "YAML configuration file: the same windows, ingest and metrics keys as run.")
    var config: String?

    @Option(name: .customLong("set"), help: "Override one key, e.g. --set windows.size=5m (repeatable).")
    var overrides: [String] = []

    func run() throws {
        let settings = try loadOfflineSettings(config: self.config, overrides: self.overrides)
        var replay = makeReplay(settings: settings, sourceName: self.file == "-" ? "stdin" : self.file)
        var output = BufferedOutput()
        try replayFile(self.file, into: &replay) { output.write($0.render()) }
        output.flush()
        FileHandle.standardError.write(Data((replay.summary + "\n").utf8))
    }
}

/// Settings for offline commands (no Kafka needed): `--config` and `--set`, plus the environment.
func loadOfflineSettings(config: String?, overrides: [String]) throws -> Settings {
    let yaml = try config.map { try String(contentsOfFile: $0, encoding: .utf8) }
    let pairs = try parseProperties(overrides, option: "--set").sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    do throws(SettingsError) {
        return try Settings.load(
            yaml: yaml,
            environment: ProcessInfo.processInfo.environment,
            overrides: pairs,
            requireKafka: false
        )
    } catch {
        throw ValidationError(error.description)
    }
}

/// The offline pipeline with the windows, ingest, detection and alert settings.
func makeReplay(settings: Settings, sourceName: String) -> Replay {
    var windows = settings.daemon.windows
    windows.brands = .local
    return Replay(
        sourceName: sourceName,
        ingestor: Ingestor(
            decoder: EventDecoder(configuration: settings.daemon.decoder),
            deduplicator: Deduplicator(configuration: settings.daemon.dedup)
        ),
        engine: WindowEngine(configuration: windows),
        detection: settings.detection,
        alertOptions: Replay.AlertOptions(
            runbookURL: settings.alerts.runbookURL,
            resendIntervalMillis: settings.alerts.resendIntervalMillis
        )
    )
}

/// Feeds a file of JSON lines (or `-`: standard input) through `replay`, end of input included.
/// Blank lines are skipped; a record's offset is its line number. A long replay reports its progress
/// (events/s, event-time position) on stderr every five seconds.
func replayFile(_ path: String, into replay: inout Replay, emit: (OutputLine) -> Void) throws {
    let clock = ContinuousClock()
    let started = clock.now
    var reported = started
    let handle: FileHandle
    if path == "-" {
        handle = FileHandle.standardInput
    } else {
        guard let opened = FileHandle(forReadingAtPath: path) else { throw ValidationError("cannot open \(path)") }
        handle = opened
    }
    var pending: [UInt8] = []
    var lineNumber: Int64 = 0
    func feed(_ line: ArraySlice<UInt8>) {
        lineNumber += 1
        if lineNumber % 65_536 == 0, clock.now - reported >= .seconds(5) {
            reported = clock.now
            let seconds = Double((reported - started).components.seconds) + 1e-9
            let position =
                replay.engine.watermark == Int64.min ? "n/a" : RFC3339.format(millis: replay.engine.watermark)
            FileHandle.standardError.write(
                Data(
                    "replay: \(lineNumber) events, \(Int(Double(lineNumber) / seconds))/s, event time \(position)\n"
                        .utf8
                )
            )
        }
        guard !line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) else { return }  // blank line
        for record in Array(line).withUnsafeBytes({ replay.feed($0, offset: lineNumber) }) { emit(record) }
    }
    while true {
        let chunk = handle.readData(ofLength: 1 << 20)
        if chunk.isEmpty { break }
        pending.append(contentsOf: chunk)
        var start = pending.startIndex
        while let newline = pending[start...].firstIndex(of: 0x0A) {
            feed(pending[start..<newline])
            start = newline + 1
        }
        pending.removeSubrange(..<start)
    }
    if !pending.isEmpty { feed(pending[...]) }
    for record in replay.finish() { emit(record) }
}

/// Collects output lines and writes them to stdout in large chunks.
struct BufferedOutput {
    private var buffer: [UInt8] = []

    mutating func write(_ line: String) {
        self.buffer.append(contentsOf: line.utf8)
        self.buffer.append(0x0A)
        if self.buffer.count >= 1 << 16 { self.flush() }
    }

    mutating func flush() {
        guard !self.buffer.isEmpty else { return }
        FileHandle.standardOutput.write(Data(self.buffer))
        self.buffer.removeAll(keepingCapacity: true)
    }
}
