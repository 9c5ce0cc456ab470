import ArgumentParser
import Foundation
import PulseCore

/// `crowdpulse bench-decode`: our event decoder vs Foundation's `JSONDecoder` on the same corpus.
struct BenchDecode: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-decode",
        abstract: "Decode the standard synthetic events with our decoder and with JSONDecoder; print both rates."
    )

    @Option(help: "Distinct events in the corpus.")
    var events: Int = 100_000

    @Option(help: "Passes over the corpus for our decoder.")
    var passes: Int = 20

    @Flag(help: "Measure only our decoder (for profiling).")
    var oursOnly = false

    /// The same fields as ``Event``, decoded the usual Foundation way.
    struct CodableEvent: Decodable {
        struct User: Decodable {
            var created_at: String?
            var followers: Int64?
            var verified: Bool?
        }
        var event_id: String
        var type: String
        var occurred_at: Int64
        var subject_id: String
        var user_id: String
        var brand: String?
        var platform: String?
        var text: String?
        var lang: String?
        var sentiment: Double?
        var parent_event_id: String?
        var amount: Double?
        var currency: String?
        var user: User?
    }

    func run() throws {
        var generator = SyntheticEvents()
        let base: Int64 = 1_795_687_200_000
        let corpus = (0..<self.events).map { Data(generator.next(occurredAtMillis: base + Int64($0)).json.utf8) }
        let bytes = corpus.reduce(0) { $0 + $1.count }
        print("corpus: \(self.events) synthetic events, mean \(bytes / self.events) bytes; one core")

        let decoder = EventDecoder()
        let clock = ContinuousClock()
        var accepted = 0
        // The pipeline decodes straight from a consumer batch's buffer; byte arrays model that here.
        let arrays = corpus.map { [UInt8]($0) }
        let ours = clock.measure {
            for _ in 0..<self.passes {
                for bytes in arrays {
                    bytes.withUnsafeBytes { raw in
                        if let event = try? decoder.decodeEvent(raw, nowMillis: nil), !event.eventID.isEmpty {
                            accepted += 1
                        }
                    }
                }
            }
        }
        guard accepted == self.events * self.passes else {
            throw ValidationError("our decoder rejected \(self.events * self.passes - accepted) events")
        }
        let ourRate = Double(self.events * self.passes) / ours.seconds
        print("crowdpulse EventDecoder: \(Int(ourRate)) events/s (\(String(format: "%.0f", 1e9 / ourRate)) ns/event)")
        if self.oursOnly { return }
        let foundation = JSONDecoder()
        var decoded = 0
        let theirs = try clock.measure {
            for data in corpus {
                let event = try foundation.decode(CodableEvent.self, from: data)
                decoded += event.event_id.isEmpty ? 0 : 1
            }
        }
        let theirRate = Double(decoded) / theirs.seconds
        print("Foundation JSONDecoder:  \(Int(theirRate)) events/s")
        print(
            String(
                format: "ratio ours/JSONDecoder = %.1f (target >= 10; ours target >= 2 000 000/s)",
                ourRate / theirRate
            )
        )
    }
}
