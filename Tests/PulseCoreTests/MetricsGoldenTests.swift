import Foundation
import PulseCore
import Testing

/// `schemas/samples/metrics.v1`: replaying `fixture.ndjson` must give exactly the golden records (hand-
/// checked against the formulas in docs/metrics.md; the Python check validates them against the schema).
@Suite("Metric records: golden samples")
struct MetricsGoldenTests {
    static let directory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("schemas/samples/metrics.v1")

    /// Sorted-key JSON text, for comparing parsed values.
    static func canonical(_ value: Any) throws -> String {
        String(decoding: try JSONSerialization.data(withJSONObject: value, options: [.sortedKeys]), as: UTF8.self)
    }

    @Test("Replaying the fixture gives the golden records, key for key")
    func replayMatchesGolden() throws {
        let fixture = try String(contentsOf: Self.directory.appendingPathComponent("fixture.ndjson"), encoding: .utf8)
        var replay = Replay(sourceName: "fixture")
        var produced: [String: Any] = [:]
        var lines: [OutputLine] = []
        for line in fixture.split(separator: "\n") {
            lines += Array(line.utf8).withUnsafeBytes { replay.feed($0, offset: 0) }
        }
        lines += replay.finish()
        for line in lines where line.topic == "metrics" {
            guard case .json(let text) = line.value else { continue }
            produced[line.key!] = try JSONSerialization.jsonObject(with: Data(text.utf8))
        }
        let golden: [(String, String)] = [
            ("subject|post-42|2026-11-26T10:00:00Z", "subject-post-42-1000.json"),
            ("subject|post-42|2026-11-26T10:01:00Z", "subject-post-42-1001.json"),
            ("subject|sku-7|2026-11-26T10:00:00Z", "subject-sku-7-1000.json"),
            ("brand|acme|2026-11-26T10:00:00Z", "brand-acme-1000.json"),
            ("brand|acme|2026-11-26T10:01:00Z", "brand-acme-1001.json"),
        ]
        #expect(Set(produced.keys) == Set(golden.map(\.0)))
        for (key, file) in golden {
            let expected = try JSONSerialization.jsonObject(
                with: Data(contentsOf: Self.directory.appendingPathComponent(file))
            )
            #expect(try Self.canonical(expected) == Self.canonical(produced[key] ?? [:]), "\(key)")
        }
    }
}
