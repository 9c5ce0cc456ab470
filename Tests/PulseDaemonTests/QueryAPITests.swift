import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Prometheus
import PulseCore
import PulseDaemon
import Testing

/// A live view holding ten minutes of brand and subject records, with one firing alert on brand b1.
func sampleLiveView() throws -> LiveView {
    let live = LiveView()
    let start: Int64 = 1_790_000_000_000 - 1_790_000_000_000 % 60_000
    for minute in 0..<10 {
        var rows: [(record: MetricsRecord, rendered: [UInt8])] = []
        for (level, entity, scale) in [
            (EntityLevel.brand, "b1", 3), (.brand, "b2", 1), (.subject, "p1", 2), (.subject, "p2", 1),
        ] {
            var aggregate = WindowAggregate()
            aggregate.brand = level == .brand ? entity : "b1"
            aggregate.counts[Int(Event.Kind.like.rawValue)] = scale * 10 + minute
            aggregate.scored = 20
            aggregate.negative = entity == "b1" ? 2 + minute * 2 : 3
            let record = MetricsRecord(
                key: EntityKey(level, entity),
                windowStart: start + Int64(minute) * 60_000,
                windowEnd: start + Int64(minute + 1) * 60_000,
                isFinal: true,
                revision: 0,
                aggregate: aggregate,
                previousShares: nil
            )
            rows.append((record, record.renderUTF8()))
        }
        live.record(rows)
    }
    let alert = try deliveryRecord(.firing, at: 1_790_000_000_000, resend: 60_000)
    live.alert(alert, rendered: alert.render(emittedAt: 1_790_000_100_000), emittedAt: 1_790_000_100_000)
    return live
}

@Suite("Query API")
struct QueryAPITests {
    func router(token: String? = nil) throws -> Router<BasicRequestContext> {
        let live = try sampleLiveView()
        return HTTPEndpoints.router(
            registry: PrometheusCollectorRegistry(),
            readiness: { .init(isReady: true, reason: "ok") },
            query: .init(live: live, status: { #"{"events":42,"partitions":3,"consumer_lag":0}"# }, token: token)
        )
    }

    func json(_ buffer: ByteBuffer) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(String(buffer: buffer).utf8)) as? [String: Any])
    }

    @Test("/v1/top ranks by the latest window, /v1/entities has the record and its history, /v1/alerts the timeline")
    func queries() async throws {
        try await Application(router: try self.router()).test(.router) { client in
            try await client.execute(uri: "/v1/top?metric=engagement&level=brand&limit=5", method: .get) { response in
                #expect(response.status == .ok)
                let body = try self.json(response.body)
                let entities = try #require(body["entities"] as? [[String: Any]])
                #expect(entities.compactMap { $0["entity"] as? String } == ["b1", "b2"])
                // b1: 39 likes in its last window, weight 1.
                #expect(entities.first?["value"] as? Int == 39)
                #expect((entities.first?["history"] as? [Any])?.count == 10)
            }
            try await client.execute(uri: "/v1/top?metric=negative_share&level=brand", method: .get) { response in
                let entities = try #require(try self.json(response.body)["entities"] as? [[String: Any]])
                #expect(entities.first?["entity"] as? String == "b1")
                #expect(entities.first?["value"] as? Double == 1)  // 20 of 20 in the last window
            }
            try await client.execute(uri: "/v1/top?metric=virality&level=subject", method: .get) { response in
                let entities = try self.json(response.body)["entities"] as? [Any]
                #expect(entities?.count == 2)
            }
            try await client.execute(uri: "/v1/entities/brand/b1", method: .get) { response in
                #expect(response.status == .ok)
                let body = try self.json(response.body)
                let latest = try #require(body["latest"] as? [String: Any])
                #expect(latest["schema"] as? String == "crowdpulse.metrics/v1" && latest["entity"] as? String == "b1")
                let history = try #require(body["history"] as? [[String: Any]])
                #expect(history.compactMap { $0["negative_share"] as? Double }.first == 0.1)
                #expect((body["alerts"] as? [Any])?.count == 1)
            }
            try await client.execute(uri: "/v1/entities/brand/nobody", method: .get) { response in
                #expect(response.status == .notFound)
            }
            try await client.execute(uri: "/v1/entities/planet/b1", method: .get) { response in
                #expect(response.status == .badRequest)
            }
            try await client.execute(uri: "/v1/top?metric=fame", method: .get) { response in
                #expect(response.status == .badRequest)
            }
            try await client.execute(uri: "/v1/alerts", method: .get) { response in
                let body = try self.json(response.body)
                let active = try #require(body["active"] as? [[String: Any]])
                #expect(active.count == 1)
                let alert = try #require(active.first?["alert"] as? [String: Any])
                let record = try #require(alert["alert"] as? [String: Any])
                #expect(record["schema"] as? String == "crowdpulse.alert/v1")
                #expect((alert["timeline"] as? [[String: Any]])?.first?["change"] as? String == "firing")
                #expect((active.first?["history"] as? [Any])?.count == 10)
            }
            try await client.execute(uri: "/", method: .get) { response in
                #expect(response.status == .ok)
                let page = String(buffer: response.body)
                #expect(page.contains("<title>CrowdPulse</title>"))
                #expect(!page.contains("<script src"), "no external scripts")
            }
        }
    }

    @Test("With a token, /v1 needs the bearer; /metrics, /healthz and the page stay open")
    func token() async throws {
        try await Application(router: try self.router(token: "s3cret")).test(.router) { client in
            try await client.execute(uri: "/v1/alerts", method: .get) { response in
                #expect(response.status == .unauthorized)
            }
            try await client.execute(uri: "/v1/alerts", method: .get, headers: [.authorization: "Bearer nope!!"]) {
                response in
                #expect(response.status == .unauthorized)
            }
            try await client.execute(uri: "/v1/alerts", method: .get, headers: [.authorization: "Bearer s3cret"]) {
                response in
                #expect(response.status == .ok)
            }
            for open in ["/", "/healthz", "/metrics"] {
                try await client.execute(uri: open, method: .get) { response in #expect(response.status == .ok) }
            }
        }
    }

    @Test("Memory stays bounded: the least recently updated entities are dropped beyond the cap")
    func bounded() {
        var configuration = LiveView.Configuration()
        configuration.maxEntities = 1_000
        let live = LiveView(configuration: configuration)
        for batch in 0..<50 {
            var rows: [(record: MetricsRecord, rendered: [UInt8])] = []
            for index in 0..<1_000 {
                let record = MetricsRecord(
                    key: EntityKey(.subject, "s\(batch)-\(index)"),
                    windowStart: 0,
                    windowEnd: 60_000,
                    isFinal: true,
                    revision: 0,
                    aggregate: WindowAggregate(),
                    previousShares: nil
                )
                rows.append((record, Array("{}".utf8)))
            }
            live.record(rows)
        }
        #expect(live.entityCount <= 1_100)
        #expect(live.entity(level: .subject, id: "s49-999") != nil)
        #expect(live.entity(level: .subject, id: "s0-0") == nil)
    }
}
