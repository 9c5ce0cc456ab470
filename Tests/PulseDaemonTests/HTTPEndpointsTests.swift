import CoreMetrics
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import Prometheus
import PulseCore
import PulseDaemon
import Testing

@Suite("HTTP endpoints")
struct HTTPEndpointsTests {
    @Test("/metrics shows dead letters per reason in Prometheus text; /healthz and /readyz answer")
    func endpoints() async throws {
        let registry = PrometheusCollectorRegistry()
        let metrics = IngestMetrics(factory: PrometheusMetricsFactory(registry: registry))
        metrics.deadLetter(.badValue).increment(by: 3)
        metrics.deadLetter(.malformedJSON).increment()
        metrics.accepted.increment(by: 42)
        let ready = Locked(false)
        let router = HTTPEndpoints.router(registry: registry) {
            ready.value
                ? .init(isReady: true, reason: "consuming 6 partitions")
                : .init(isReady: false, reason: "no partitions assigned yet")
        }
        let app = Application(router: router)
        try await app.test(.router) { client in
            try await client.execute(uri: "/metrics", method: .get) { response in
                #expect(response.status == .ok)
                let text = String(buffer: response.body)
                #expect(text.contains(#"crowdpulse_dead_letters_total{reason="bad_value"} 3"#))
                #expect(text.contains(#"crowdpulse_dead_letters_total{reason="malformed_json"} 1"#))
                #expect(text.contains("crowdpulse_events_accepted_total 42"))
                #expect(text.contains("# TYPE crowdpulse_dead_letters_total counter"))
            }
            try await client.execute(uri: "/healthz", method: .get) { response in
                #expect(response.status == .ok)
            }
            try await client.execute(uri: "/readyz", method: .get) { response in
                #expect(response.status == .serviceUnavailable)
                #expect(String(buffer: response.body).contains("no partitions assigned"))
            }
            ready.value = true
            try await client.execute(uri: "/readyz", method: .get) { response in
                #expect(response.status == .ok)
            }
        }
    }
}

/// A value behind a lock, for closures that outlive the test's stack frame.
final class Locked<Value: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var storage: Value
    init(_ value: Value) { self.storage = value }
    var value: Value {
        get { self.lock.withLock { self.storage } }
        set { self.lock.withLock { self.storage = newValue } }
    }
}

@Suite("JSON logs")
struct JSONLogHandlerTests {
    @Test("Each event is one JSON object with level, message and metadata")
    func jsonLines() throws {
        let lines = Locked<[String]>([])
        var handler = JSONLogHandler(label: "crowdpulse") { line in lines.value.append(line) }
        handler.logLevel = .debug
        handler[metadataKey: "kafka.group.id"] = "g"
        let logger = Logger(label: "crowdpulse") { _ in handler }
        logger.warning("Consumer error", metadata: ["kafka.error": "_TRANSPORT: \"quoted\"\nnext"])
        let line = try #require(lines.value.first)
        #expect(!line.contains("\n"))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: String])
        #expect(object["level"] == "warning")
        #expect(object["message"] == "Consumer error")
        #expect(object["kafka.group.id"] == "g")
        #expect(object["kafka.error"] == "_TRANSPORT: \"quoted\"\nnext")
        #expect(object["ts"]?.hasSuffix("Z") == true)
    }
}
