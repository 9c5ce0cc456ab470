import Foundation
import Logging
import Prometheus
import PulseCore
import PulseDaemon
import PulseKafka
import ServiceLifecycle
import Testing

@Suite("Crisis alerts end to end")
struct CrisisEndToEndTests {
    @Test(
        "A wave of angry comments produced into the input topic shows up on the alerts topic, as in replay",
        .timeLimit(.minutes(2))
    )
    func crisisReachesAlertsTopic() async throws {
        // Ten minutes of event time ending 10 minutes ago: light traffic on 20 subjects of two brands, and
        // from minute 3 a wave of negative comments on acme's post-7 from 300 distinct, established users.
        let end = (WallClock.nowMillis() - 10 * 60_000) / 60_000 * 60_000
        let start = end - 10 * 60_000
        var random = SplitMix64(seed: 5)
        var events: [(key: String, json: String, at: Int64)] = []
        for index in 0..<1200 {
            let at = start + Int64(index) * 500
            let subject = "post-\(random.next() % 20)"
            let brand = subject.hasSuffix("1") || subject.hasSuffix("3") ? "globex" : "acme"
            let sentiment = random.next() % 5 == 0 ? -0.6 : 0.5
            events.append(
                (
                    subject,
                    #"{"event_id":"bg\#(index)","type":"comment","occurred_at":\#(at),"subject_id":"\#(subject)","user_id":"u\#(random.next() % 500)","brand":"\#(brand)","text":"ok","sentiment":\#(sentiment)}"#,
                    at
                )
            )
        }
        let complaints = [
            "charged twice", "support never answered", "the app deleted my playlists", "refund still missing",
            "order arrived broken", "nobody picks up the phone", "the update ruined everything",
            "my account got locked", "delivery is two weeks late", "they cancelled my subscription",
            "the screen cracked in a day", "worst service I have had",
        ]
        for index in 0..<300 {
            let at = start + 3 * 60_000 + Int64(index) * 600
            let text = (0..<3).map { _ in complaints[Int(random.next() % UInt64(complaints.count))] }
                .joined(separator: ", ")
            events.append(
                (
                    "post-7",
                    #"{"event_id":"w\#(index)","type":"comment","occurred_at":\#(at),"subject_id":"post-7","user_id":"angry-\#(index)","brand":"acme","text":"\#(text)","sentiment":-0.8,"user":{"created_at":"2024-01-01T00:00:00Z"}}"#,
                    at
                )
            )
        }
        events.sort { $0.at < $1.at }

        var replay = Replay(sourceName: "test")
        var expected: Set<String> = []
        var lines: [OutputLine] = []
        for event in events { lines += Array(event.json.utf8).withUnsafeBytes { replay.feed($0, offset: 0) } }
        lines += replay.finish()
        for line in lines where line.topic == "alerts" {
            if case .json(let value) = line.value { expected.insert(Self.identity(value)) }
        }
        #expect(
            expected.contains { $0.hasPrefix("NegativeSentimentSpike subject post-7 firing") },
            "\(expected) \(replay.summary)"
        )

        // Alertmanager and a webhook on a local receiver get the same alerts.
        let receiver = AlertReceiver()
        let port = try await receiver.start()
        var delivery = AlertDelivery.Configuration()
        delivery.alertmanagerURLs = ["http://127.0.0.1:\(port)"]
        delivery.webhookURL = "http://127.0.0.1:\(port)/hook"
        func delivered() -> Set<String> {
            Set(
                receiver.bodies("/hook").compactMap { body -> String? in
                    guard let alerts = (body as? [String: Any])?["alerts"] as? [[String: Any]],
                        let labels = alerts.first?["labels"] as? [String: String]
                    else { return nil }
                    return "\(labels["alertname"] ?? "?") \(labels["level"] ?? "?") \(labels["entity"] ?? "?")"
                }
            )
        }
        let firing = Set(expected.map { $0.split(separator: " ").prefix(3).joined(separator: " ") })
        let registry = PrometheusCollectorRegistry()
        let records = try await runEmbeddedDaemon(
            events: events.map { ($0.key, $0.json) },
            groupID: "crisis",
            alerts: delivery,
            metrics: IngestMetrics(factory: PrometheusMetricsFactory(registry: registry)),
            output: { $0.alerts },
            done: {
                expected.isSubset(of: Set($0.map { Self.identity($0.value) })) && firing.isSubset(of: delivered())
                    && !receiver.bodies("/api/v2/alerts").isEmpty
            }
        )
        await receiver.stop()
        #expect(firing.isSubset(of: delivered()), "\(delivered())")
        let posted = receiver.bodies("/api/v2/alerts").compactMap { $0 as? [[String: Any]] }.flatMap { $0 }
        #expect(posted.contains { ($0["labels"] as? [String: String])?["entity"] == "post-7" })
        // Alerts raised while processing a record have their latency from that record's broker time (those
        // raised by an idle close, on the wall clock, have none).
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        let text = String(decoding: buffer, as: UTF8.self)
        let count = text.split(separator: "\n").first { $0.hasPrefix("crowdpulse_alert_latency_seconds_count") }
        let measured = count.flatMap { Double($0.split(separator: " ").last ?? "") } ?? 0
        #expect(measured >= 1 && measured <= Double(records.count), "\(text)")
        let actual = Set(records.map { Self.identity($0.value) })
        let keys = records.map(\.key)
        #expect(actual == expected)
        #expect(keys.allSatisfy { $0.count == 16 }, "alerts are keyed by fingerprint")
    }

    /// alertname, level, entity, change and severity of an alert record.
    static func identity(_ json: String) -> String {
        guard let object = (try? JSONSerialization.jsonObject(with: Data(json.utf8))) as? [String: Any],
            let labels = object["labels"] as? [String: String],
            let annotations = object["annotations"] as? [String: String]
        else { return "unparsable \(json)" }
        return [
            labels["alertname"], labels["level"], labels["entity"], annotations["change"], labels["severity"],
        ].map { $0 ?? "?" }.joined(separator: " ")
    }
}
