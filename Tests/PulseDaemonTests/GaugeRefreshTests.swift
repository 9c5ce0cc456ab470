import Prometheus
import PulseCore
import PulseKafka
import PulseTestSupport
import Synchronization
import Testing

@testable import PulseDaemon

@Suite("Gauges refreshed by the pipeline's tick")
struct GaugeRefreshTests {
    /// A wall clock the test moves.
    final class Clock: Sendable {
        let now: Atomic<Int64>
        init(_ start: Int64) { self.now = Atomic(start) }
    }

    @Test(
        "The state-bytes gauge walks the state at the first tick and then once per 10 s; the other gauges every tick",
        .timeLimit(.minutes(2))
    )
    func stateBytesEveryTenSeconds() async throws {
        let (names, broker, client, producer) = try CheckpointCaptureTests.broker(inputPartitions: 1)
        defer { withExtendedLifetime(broker) {} }
        let start = (WallClock.nowMillis() - 3_600_000) / 60_000 * 60_000
        var generator = SyntheticEvents(configuration: .init(subjects: 50, brands: 4, users: 500, seed: 7))
        // Twenty seconds of event time: every event lands in one open window.
        let events = (0..<1000).map { generator.next(occurredAtMillis: start + Int64($0) * 20) }
        let batches = try await CheckpointCaptureTests.sendAndRead(
            events,
            to: names.input[0],
            producer: producer,
            client: client
        )

        let clock = Clock(start + 10 * 60_000)
        let registry = PrometheusCollectorRegistry()
        let pipeline = IngestPipeline(
            producer: producer,
            topics: names,
            metrics: IngestMetrics(factory: PrometheusMetricsFactory(registry: registry)),
            logger: daemonTestLogger,
            nowMillis: { clock.now.load(ordering: .relaxed) },
            threads: 1
        )
        func gauges() -> (bytes: Double?, windows: Double?) {
            var buffer: [UInt8] = []
            registry.emit(into: &buffer)
            let text = String(decoding: buffer, as: UTF8.self)
            return (
                OperationsTests.value(text, "crowdpulse_state_bytes"),
                OperationsTests.value(text, "crowdpulse_windows_open")
            )
        }

        try pipeline.tick()  // nothing processed yet: no state
        #expect(gauges().bytes == 0 && gauges().windows == 0)
        for batch in batches { try pipeline.process(batch) }
        clock.now.add(1_000, ordering: .relaxed)
        try pipeline.tick()
        #expect(gauges().windows ?? 0 > 0, "the tick ran")
        #expect(gauges().bytes == 0, "a second later the state is not walked again")
        clock.now.add(9_000, ordering: .relaxed)
        try pipeline.tick()
        #expect(gauges().bytes ?? 0 > 0, "ten seconds after the last walk it is")
    }
}
