import Foundation
import PulseCore
import Testing

/// `schemas/samples/alert.v1`: replaying `fixture.ndjson` (written by `make_fixture.py`: a customer backlash
/// on acme, a coordinated attack on globex) must give exactly the golden alert records; the Python check
/// validates the same files against `alert.v1.schema.json`.
@Suite("Alert records: golden samples")
struct AlertGoldenTests {
    static let directory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("schemas/samples/alert.v1")

    static func alerts() throws -> [[String: Any]] {
        let fixture = try String(contentsOf: Self.directory.appendingPathComponent("fixture.ndjson"), encoding: .utf8)
        var replay = Replay(sourceName: "fixture")
        var lines: [OutputLine] = []
        for line in fixture.split(separator: "\n") {
            lines += Array(line.utf8).withUnsafeBytes { replay.feed($0, offset: 0) }
        }
        lines += replay.finish()
        return lines.filter { $0.topic == "alerts" }.compactMap { line in
            guard case .json(let text) = line.value else { return nil }
            return parseJSONObject(text)
        }
    }

    static func name(_ alert: [String: Any]) -> String {
        let labels = alert["labels"] as? [String: String] ?? [:]
        let kind = labels["alertname"] == CrisisDetector.spikeName ? "spike" : "campaign"
        return "\(kind)-\(labels["level"] ?? "?")-\(alert["status"] as? String ?? "?").json"
    }

    @Test("Replaying the fixture gives the golden alert records, key for key")
    func replayMatchesGolden() throws {
        let produced = try Self.alerts()
        // Backlash: subject and brand fire and resolve; attack: subject and brand campaigns fire and resolve.
        #expect(produced.count == 8)
        let byName = Dictionary(produced.map { (Self.name($0), $0) }, uniquingKeysWith: { first, _ in first })
        let manifest = try #require(
            try JSONSerialization.jsonObject(
                with: Data(contentsOf: Self.directory.appendingPathComponent("manifest.json"))
            )
                as? [String: Any]
        )
        let samples = try #require(manifest["samples"] as? [[String: Any]])
        let valid = samples.filter { $0["valid"] as? Bool == true }.compactMap { $0["file"] as? String }
        #expect(valid.count == 5)
        for file in valid {
            let expected = try JSONSerialization.jsonObject(
                with: Data(contentsOf: Self.directory.appendingPathComponent(file))
            )
            let actual = try #require(byName[file], "\(file) not produced")
            #expect(try MetricsGoldenTests.canonical(expected) == MetricsGoldenTests.canonical(actual), "\(file)")
        }
    }

    @Test("The figures agree with a direct count over the fixture")
    func independentCount() throws {
        let alert = try #require(try Self.alerts().first { Self.name($0) == "spike-subject-firing.json" })
        let detected = try #require(RFC3339.parseMillis(alert["detected_at"] as? String ?? ""))
        let fixture = try String(contentsOf: Self.directory.appendingPathComponent("fixture.ndjson"), encoding: .utf8)
        var negative = 0
        var scored = 0
        var authors: Set<String> = []
        for line in fixture.split(separator: "\n") {
            let event = try #require(parseJSONObject(String(line)))
            guard event["subject_id"] as? String == "acme-launch", let sentiment = event["sentiment"] as? Double,
                let at = RFC3339.parseMillis(event["occurred_at"] as? String ?? ""),
                at >= detected - 300_000 && at < detected
            else { continue }
            scored += 1
            if sentiment <= -0.05 {
                negative += 1
                authors.insert(event["user_id"] as? String ?? "")
            }
        }
        let values = try #require(alert["values"] as? [String: Any])
        #expect(values["observed_negative"] as? Int == negative)
        #expect(values["total_volume"] as? Int == scored)
        // Every author of the backlash bought from acme before: verified customers, not new accounts.
        #expect(authors.allSatisfy { $0.hasPrefix("acme-buyer-") })
        #expect(values["verified_customer_share"] as? Double == 1)
        let annotations = try #require(alert["annotations"] as? [String: String])
        #expect(annotations["assessment"] == "organic")
        let campaign = try #require(try Self.alerts().first { Self.name($0) == "campaign-subject-firing.json" })
        #expect((campaign["annotations"] as? [String: String])?["assessment"] == "suspected_coordinated")
        #expect(((campaign["values"] as? [String: Any])?["new_account_share"] as? Double) == 1)
    }
}
