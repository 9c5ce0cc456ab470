import ArgumentParser
import Foundation
import PulseCore

/// `crowdpulse bench-replay`: the full offline pipeline (decode, validate, dedup, windows, metrics,
/// record rendering) on the standard mixed stream, and the state held per open entity-window.
struct BenchReplay: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-replay",
        abstract: "Measure replay throughput on the standard stream and bytes of state per open entity-window."
    )

    @Option(help: "Events in the stream.")
    var events: Int = 1_000_000

    @Option(help: "Events per second of event time (spreads the stream over windows).")
    var eventsPerSecond: Int = 2000

    @Option(help: "Distinct subjects in the stream.")
    var subjects: Int = 10_000

    @Flag(help: "Memory over time instead of speed: generate while replaying, print resident memory ten times.")
    var memory = false

    /// Resident set size in bytes (Linux /proc/self/statm).
    static func residentBytes() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let fields = text.split(separator: " ")
        return fields.count > 1 ? (Int(fields[1]) ?? 0) * Int(sysconf(Int32(_SC_PAGESIZE))) : 0
    }

    func memoryRun() {
        var generator = SyntheticEvents(configuration: .init(subjects: self.subjects, brands: 200))
        let start: Int64 = 1_795_687_200_000
        var replay = Replay(sourceName: "bench")
        print("memory: \(self.events) events, \(self.subjects) subjects, \(self.eventsPerSecond)/s of event time")
        for index in 0..<self.events {
            let event = generator.next(occurredAtMillis: start + Int64(index) * 1000 / Int64(self.eventsPerSecond))
            var bytes = Array(event.json.utf8)
            _ = bytes.withUnsafeMutableBytes { replay.feed(UnsafeRawBufferPointer($0), offset: Int64(index)) }
            if (index + 1) % max(1, self.events / 10) == 0 {
                let entities = replay.detectors.map { "\($0.level.rawValue) \($0.entityCount)" }.joined(separator: ", ")
                print(
                    "after \(index + 1) events (\((index + 1) / self.eventsPerSecond / 60) min of event time): resident \(Self.residentBytes() / 1_048_576) MiB, open entity-windows \(replay.engine.openWindowCount), detector entities \(entities)"
                )
                fflush(nil)
            }
        }
    }

    func run() throws {
        if self.memory {
            self.memoryRun()
            return
        }
        var generator = SyntheticEvents(configuration: .init(subjects: self.subjects, brands: 200))
        let start: Int64 = 1_795_687_200_000
        let corpus = (0..<self.events).map {
            Array(generator.next(occurredAtMillis: start + Int64($0) * 1000 / Int64(self.eventsPerSecond)).json.utf8)
        }
        let bytes = corpus.reduce(0) { $0 + $1.count }
        print(
            "stream: \(self.events) standard events (60% likes, 20% comments, 15% shares, 5% purchases; 10 000 subjects, 200 brands), mean \(bytes / self.events) bytes, \(self.eventsPerSecond)/s of event time"
        )
        var replay = Replay(sourceName: "bench")
        var lines = 0
        var peakWindows = 0
        var peakBytes = 0
        let clock = ContinuousClock()
        let elapsed = clock.measure {
            for (index, event) in corpus.enumerated() {
                lines += event.withUnsafeBytes { replay.feed($0, offset: Int64(index)) }.count
                if index % 50_000 == 0, replay.engine.openWindowCount > peakWindows {
                    peakWindows = replay.engine.openWindowCount
                    peakBytes = replay.engine.stateBytes
                }
            }
            lines += replay.finish().count
        }
        let seconds = elapsed.seconds
        print("replay: \(Int(Double(self.events) / seconds)) events/s on one core (\(lines) output records)")
        if peakWindows > 0 {
            print("state: \(peakWindows) open entity-windows at peak, \(peakBytes / peakWindows) bytes each (estimate)")
        }
        print(replay.summary)
    }
}
