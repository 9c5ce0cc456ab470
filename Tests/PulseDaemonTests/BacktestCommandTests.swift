import Foundation
import PulseCore
import PulseDaemon
import Testing

@Suite("crowdpulse backtest")
struct BacktestCommandTests {
    @Test("Labels: NAB's combined_windows shape with NAB times, JSON lines, and errors that say where")
    func labels() throws {
        let nab = """
            {"brand:acme": [["2026-11-02 14:00:00.000000", "2026-11-02 14:20:00.000000"]],
             "*": [["2026-11-03T01:00:00Z", "2026-11-03T02:00:00Z"]], "acme-post-3": []}
            """
        let windows = try Backtest.parseLabels(nab)
        #expect(
            windows == [
                Backtest.Window(
                    start: RFC3339.parseMillis("2026-11-03T01:00:00Z")!,
                    end: RFC3339.parseMillis("2026-11-03T02:00:00Z")!
                ),
                Backtest.Window(
                    start: RFC3339.parseMillis("2026-11-02T14:00:00Z")!,
                    end: RFC3339.parseMillis("2026-11-02T14:20:00Z")!,
                    level: .brand,
                    entity: "acme"
                ),
            ]
        )
        let lines = """
            {"start": "2026-11-02T14:00:00Z", "end": "2026-11-02T14:20:00Z", "entity": "acme-post-3", "level": "subject"}

            {"start": 1793628000000, "end": 1793629200000}
            """
        let parsed = try Backtest.parseLabels(lines)
        #expect(parsed.count == 2 && parsed[0].level == .subject && parsed[1].entity == nil)
        #expect(parsed[1].start == 1_793_628_000_000)
        for bad in [
            #"{"start": "x", "end": "2026-11-02T14:20:00Z"}"#, #"[{"start": 5, "end": 1}]"#, "{oops", #"{"a": 3}"#,
        ] {
            #expect(throws: Backtest.LabelError.self) { _ = try Backtest.parseLabels(bad) }
        }
    }

    @Test("Scores a stream with a labelled crisis: precision, recall, delay and NAB scores as JSON")
    func endToEnd() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("backtest-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        // Six hours of ordinary comments on acme, then 20 minutes of angry ones on one post.
        let start = RFC3339.parseMillis("2026-11-02T08:00:00Z")!
        let wave = start + 6 * 3_600_000
        var random = SplitMix64(seed: 5)
        var lines: [(at: Int64, json: String)] = []
        func comment(_ id: Int, _ at: Int64, _ subject: String, _ sentiment: Double, _ text: String) {
            lines.append(
                (
                    at,
                    #"{"event_id":"e\#(id)","type":"comment","occurred_at":\#(at),"subject_id":"\#(subject)","user_id":"u\#(id % 500)","brand":"acme","text":"\#(text)","sentiment":\#(sentiment)}"#
                )
            )
        }
        var id = 0
        var at = start
        while at < wave + 3_600_000 {
            id += 1
            let negative = random.next() % 100 < 15
            comment(id, at, "acme-post-\(random.next() % 10)", negative ? -0.6 : 0.5, negative ? "meh" : "nice")
            at += 10_000
        }
        for index in 0..<400 {
            id += 1
            comment(id, wave + Int64(index) * 3_000, "acme-post-3", -0.8, "refund now, this is a scam")
        }
        lines.sort { $0.at < $1.at }
        let events = directory.appendingPathComponent("events.ndjson")
        try lines.map(\.json).joined(separator: "\n").write(to: events, atomically: true, encoding: .utf8)
        let labels = directory.appendingPathComponent("labels.json")
        try #"{"brand:acme": [["2026-11-02 14:00:00.000000", "2026-11-02 14:20:00.000000"]]}"#.write(
            to: labels,
            atomically: true,
            encoding: .utf8
        )

        let process = Process()
        process.executableURL = URL(fileURLWithPath: try crowdpulseBinary())
        process.arguments = [
            "backtest", "--events", events.path, "--labels", labels.path, "--json", "--probation", "10%",
        ]
        let stdout = Pipe()
        process.standardOutput = stdout
        process.standardError = Pipe()
        try process.run()
        let output = stdout.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        let report = try #require(try JSONSerialization.jsonObject(with: output) as? [String: Any])
        #expect(report["windows"] as? Int == 1 && report["detected_windows"] as? Int == 1)
        #expect(report["recall"] as? Double == 1 && report["precision"] as? Double == 1)
        let delay = try #require(report["mean_delay_seconds"] as? Double)
        #expect(delay > 0 && delay <= 180)
        let scores = try #require(report["scores"] as? [[String: Any]])
        #expect(
            scores.compactMap { $0["profile"] as? String } == ["standard", "reward_low_FP_rate", "reward_low_FN_rate"]
        )
        #expect(scores.allSatisfy { ($0["normalized"] as? Double ?? 0) > 80 })
    }
}
