import Foundation
import Testing

@testable import PulseCore

/// An alert state change for `entity`, as the detector would report it.
func alertRecord(
    _ change: CrisisDetector.AlertEvent.Change,
    entity: String = "b1",
    severity: AlertSeverity = .warning,
    previous: AlertSeverity? = nil,
    startsAt: Int64 = 1_000_000,
    at: Int64 = 1_060_000,
    resendIntervalMillis: Int64 = 60_000
) -> AlertRecord {
    let evaluation = CrisisDetector.Evaluation(
        at: at,
        negative: 40,
        scored: 60,
        organicNegative: 40,
        expectedNegative: 2,
        spread: 1.5,
        z: 25.3,
        share: 0.67,
        baselineShare: 0.1,
        shareZ: 14,
        historyHours: 30,
        authenticity: .empty,
        comments: []
    )
    let event = CrisisDetector.AlertEvent(
        change: change,
        alertname: CrisisDetector.spikeName,
        level: .brand,
        entity: entity,
        brand: entity,
        severity: severity,
        previousSeverity: previous,
        startsAt: startsAt,
        detectedAt: startsAt + 60_000,
        at: at,
        evaluation: evaluation
    )
    return AlertRecord(
        event: event,
        watermark: at,
        runbookURL: "https://runbooks.example/crisis",
        resendIntervalMillis: resendIntervalMillis
    )
}

/// Parses a JSON body.
func jsonValue(_ text: String) throws -> Any {
    try JSONSerialization.jsonObject(with: Data(text.utf8))
}

@Suite("Alert outbox: the delivery schedule")
struct AlertOutboxTests {
    let second: Int64 = 1000

    func outbox(alertmanagers: Int = 1, webhook: Bool = false, maxQueued: Int = 100) -> AlertOutbox {
        AlertOutbox(
            configuration: .init(
                alertmanagers: alertmanagers,
                webhook: webhook,
                resendIntervalMillis: 60_000,
                resolvedResendMillis: 300_000,
                maxBackoffMillis: 8_000,
                maxQueued: maxQueued
            )
        )
    }

    /// An outbox whose alert fired at `t0` and reached every receiver.
    func delivered(at t0: Int64) -> AlertOutbox {
        var outbox = self.outbox()
        outbox.submit(alertRecord(.firing), now: t0)
        for request in outbox.due(now: t0) { outbox.complete(request, outcome: .delivered, now: t0) }
        return outbox
    }

    /// The Alertmanager alerts of a request: (severity, startsAt, endsAt) per alert.
    func alerts(_ request: AlertOutbox.Request) throws -> [(severity: String, startsAt: String, endsAt: String)] {
        let list = try #require(try jsonValue(request.body) as? [[String: Any]])
        return try list.map { alert in
            let labels = try #require(alert["labels"] as? [String: String])
            return (
                try #require(labels["severity"]), try #require(alert["startsAt"] as? String),
                try #require(alert["endsAt"] as? String)
            )
        }
    }

    @Test("Alertmanager: sent at once, re-sent every interval with endsAt = now + 2 × interval")
    func resends() throws {
        var outbox = self.outbox()
        let t0: Int64 = 1_800_000_000_000
        outbox.submit(alertRecord(.firing), now: t0)
        let first = outbox.due(now: t0)
        #expect(first.count == 1 && first[0].receiver == .alertmanager(0))
        let sent = try self.alerts(first[0])
        #expect(sent.count == 1 && sent[0].severity == "warning")
        #expect(sent[0].startsAt == RFC3339.format(millis: 1_000_000))
        #expect(sent[0].endsAt == RFC3339.format(millis: t0 + 120_000))
        // While the request is in flight, nothing else goes to that target.
        #expect(outbox.due(now: t0 + 1).isEmpty)
        outbox.complete(first[0], outcome: .delivered, now: t0 + 5)
        #expect(outbox.due(now: t0 + 59_000).isEmpty)
        #expect(outbox.nextWakeup(now: t0 + 59_000) == t0 + 5 + 60_000)
        let again = outbox.due(now: t0 + 65_005)
        #expect(again.count == 1)
        #expect(try self.alerts(again[0])[0].endsAt == RFC3339.format(millis: t0 + 65_005 + 120_000))
    }

    @Test("Escalation resolves the old label set and fires the new one")
    func escalation() throws {
        let t0: Int64 = 1_800_000_000_000
        var outbox = self.delivered(at: t0)
        outbox.submit(alertRecord(.escalated, severity: .critical, previous: .warning, at: 1_120_000), now: t0 + 10)
        let escalated = try self.alerts(try #require(outbox.due(now: t0 + 10).first))
        let bySeverity = Dictionary(uniqueKeysWithValues: escalated.map { ($0.severity, $0.endsAt) })
        #expect(bySeverity["warning"] == RFC3339.format(millis: 1_120_000))  // resolved at the escalation
        #expect(bySeverity["critical"] == RFC3339.format(millis: t0 + 10 + 120_000))
    }

    @Test("A resolved alert is re-sent for 5 minutes after it resolved, then forgotten")
    func resolvedWindow() throws {
        let t0: Int64 = 1_800_000_000_000
        var outbox = self.delivered(at: t0)
        outbox.submit(alertRecord(.resolved, at: 1_900_000), now: t0 + 30_000)
        let resolved = try #require(outbox.due(now: t0 + 30_000).first)
        #expect(try self.alerts(resolved).map(\.endsAt) == [RFC3339.format(millis: 1_900_000)])
        outbox.complete(resolved, outcome: .delivered, now: t0 + 30_000)
        var resends = 0
        var now = t0 + 30_000
        while now < t0 + 30_000 + 600_000 {
            now += self.second
            for request in outbox.due(now: now) {
                resends += 1
                #expect(try self.alerts(request).map(\.endsAt) == [RFC3339.format(millis: 1_900_000)])
                outbox.complete(request, outcome: .delivered, now: now)
            }
        }
        // Re-sent at +1, +2, +3, +4 minutes; at +5 minutes it is gone.
        #expect(resends == 4)
        #expect(outbox.queued.alertmanager == 0)
        #expect(outbox.nextWakeup(now: now) == nil)
    }

    @Test("An outage longer than the resolved re-send loses nothing; retries back off up to the cap")
    func outage() throws {
        var outbox = self.outbox(alertmanagers: 2)
        let t0: Int64 = 1_800_000_000_000
        outbox.submit(alertRecord(.firing), now: t0)
        outbox.submit(alertRecord(.resolved, at: 1_900_000), now: t0 + 1)
        // Target 1 is down for 20 minutes; target 0 is fine.
        var attempts: [Int64] = []
        var deliveredTo1: [AlertOutbox.Request] = []
        var now = t0 + 1
        while now < t0 + 1_500_000 {
            for request in outbox.due(now: now) {
                if request.receiver == .alertmanager(1) {
                    if now < t0 + 1_200_000 {
                        attempts.append(now - t0)
                        outbox.complete(request, outcome: .retry, now: now)
                        continue
                    }
                    deliveredTo1.append(request)
                }
                outbox.complete(request, outcome: .delivered, now: now)
            }
            now += 100
        }
        // Backoff: 0.5 s, 1 s, 2 s, 4 s, then the 8 s cap.
        let gaps = zip(attempts.dropFirst(), attempts).map { $0 - $1 }
        #expect(Array(gaps.prefix(5)) == [500, 1000, 2000, 4000, 8000])
        #expect(gaps.dropFirst(4).allSatisfy { $0 == 8000 })
        // The resolved alert reached target 1 when it came back, 20 minutes on.
        let first = try #require(deliveredTo1.first)
        #expect(try self.alerts(first).map(\.endsAt) == [RFC3339.format(millis: 1_900_000)])
        #expect(outbox.queued.alertmanager == 0)
    }

    @Test("A rejected request (4xx) is not retried and is counted")
    func rejected() throws {
        var outbox = self.outbox()
        let t0: Int64 = 1_800_000_000_000
        outbox.submit(alertRecord(.firing), now: t0)
        outbox.complete(try #require(outbox.due(now: t0).first), outcome: .rejected, now: t0)
        #expect(outbox.rejected == 1)
        #expect(outbox.due(now: t0 + 1000).isEmpty)
    }

    @Test("Webhook: one v4 notification per state change, in order; re-sends while firing, one at a time")
    func webhook() throws {
        var outbox = self.outbox(alertmanagers: 0, webhook: true)
        let t0: Int64 = 1_800_000_000_000
        outbox.submit(alertRecord(.firing), now: t0)
        outbox.submit(alertRecord(.escalated, severity: .critical, previous: .warning), now: t0)
        // The receiver is down for 10 minutes.
        var now = t0
        while now < t0 + 600_000 {
            for request in outbox.due(now: now) { outbox.complete(request, outcome: .retry, now: now) }
            now += 500
        }
        // Only the two changes wait: no re-send is queued while a notification of the alert is.
        #expect(outbox.queued.webhook == 2)
        outbox.submit(alertRecord(.resolved, severity: .critical, at: 1_900_000), now: now)
        var statuses: [(String, String)] = []
        while now < t0 + 700_000 {
            for request in outbox.due(now: now) {
                let body = try #require(try jsonValue(request.body) as? [String: Any])
                #expect(body["version"] as? String == "4")
                let alerts = try #require(body["alerts"] as? [[String: Any]])
                #expect(alerts.count == 1)
                let labels = try #require(alerts[0]["labels"] as? [String: String])
                statuses.append((try #require(body["status"] as? String), try #require(labels["severity"])))
                if body["status"] as? String == "firing" {
                    #expect(alerts[0]["endsAt"] as? String == AlertmanagerPayload.zeroTime)
                } else {
                    #expect(alerts[0]["endsAt"] as? String == RFC3339.format(millis: 1_900_000))
                }
                outbox.complete(request, outcome: .delivered, now: now)
            }
            now += 500
        }
        #expect(statuses.map(\.0) == ["firing", "firing", "resolved"])
        #expect(statuses.map(\.1) == ["warning", "critical", "critical"])
        // Resolved: no more re-sends.
        #expect(outbox.queued.webhook == 0)
        #expect(outbox.due(now: now + 600_000).isEmpty)
    }

    @Test("Webhook queue bound: a re-send is dropped before a state change, the one in flight never")
    func bound() throws {
        var outbox = self.outbox(alertmanagers: 0, webhook: true, maxQueued: 2)
        let t0: Int64 = 1_800_000_000_000
        for index in 0..<3 { outbox.submit(alertRecord(.firing, entity: "b\(index)"), now: t0) }
        #expect(outbox.queued.webhook == 2 && outbox.dropped == 1)  // b0's firing: the oldest
        for request in outbox.due(now: t0) { outbox.complete(request, outcome: .retry, now: t0) }
        // A minute on, b0 (nothing queued) wants a re-send: it is the one dropped.
        let inFlight = try #require(outbox.due(now: t0 + 60_000).first)
        #expect(outbox.queued.webhook == 2 && outbox.dropped == 2)
        #expect(inFlight.summary.hasSuffix("b1"))
        // With b1's notification in flight, a new change pushes out b2's, not b1's.
        outbox.submit(alertRecord(.resolved, entity: "b1"), now: t0 + 60_000)
        #expect(outbox.queued.webhook == 2 && outbox.dropped == 3)
        outbox.complete(inFlight, outcome: .delivered, now: t0 + 60_001)
        let next = try #require(outbox.due(now: t0 + 60_001).first)
        #expect(next.summary == "resolved NegativeSentimentSpike brand b1")
    }
}
