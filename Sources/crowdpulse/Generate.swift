import ArgumentParser
import Foundation
import Logging
import PulseCore
import PulseDaemon
import PulseKafka

/// `crowdpulse generate`: writes synthetic v1 events to a topic (benchmarks, load tests, demos).
struct Generate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Produce synthetic interaction events (60% likes, 20% comments, 15% shares, 5% purchases)."
    )

    @OptionGroup var common: CommonOptions

    @Option(help: "Kafka bootstrap servers (host:port,…).")
    var bootstrapServers: String

    @Option(help: "Topic to write to.")
    var topic: String = "crowdpulse.events"

    @Option(help: "Number of events.")
    var count: Int = 100_000

    @Option(help: "Events per second (0: as fast as possible).")
    var rate: Int = 0

    @Option(help: "Distinct subjects.")
    var subjects: Int = 10_000

    @Option(help: "Distinct brands.")
    var brands: Int = 200

    @Option(help: "Random seed.")
    var seed: UInt64 = 42

    @Option(help: "Seconds to run at --rate (instead of --count).")
    var duration: Int?

    @Option(
        help: """
            Spread event time at this many events per second of event time, ending now (benchmarks: a \
            pre-filled topic then spans many windows). Default: stamp each event with the wall clock.
            """
    )
    var eventTimeRate: Int?

    @Option(
        help: """
            Scripted incidents on top of the background: crises (organic crisis on brand-7 after a minute, \
            coordinated attack on brand-13 after two; needs --rate) or none.
            """
    )
    var scenario: String = "none"

    @Option(help: "Compression codec.")
    var compression: String = "lz4"

    @Option(
        name: [.customShort("X"), .customLong("librdkafka")],
        help: "Any librdkafka property as key=value (repeatable)."
    )
    var librdkafka: [String] = []

    func validate() throws {
        guard ["crises", "none"].contains(self.scenario) else {
            throw ValidationError("--scenario must be crises or none")
        }
        if self.scenario == "crises" && self.rate <= 0 {
            throw ValidationError("--scenario crises needs --rate: incidents are scripted in wall-clock time")
        }
        if self.duration != nil && self.rate <= 0 { throw ValidationError("--duration needs --rate") }
        if let rate = self.eventTimeRate, rate <= 0 { throw ValidationError("--event-time-rate must be positive") }
    }

    func run() async throws {
        let logger = self.common.bootstrapLogging()
        var properties = ["batch.num.messages": "10000", "queue.buffering.max.messages": "1000000"]
        properties.merge(try parseProperties(self.librdkafka, option: "--librdkafka")) { $1 }
        let producer = try KafkaProducer(
            configuration: .init(
                client: .init(
                    bootstrapServers: self.bootstrapServers,
                    clientID: "crowdpulse-generate",
                    librdkafka: properties
                ),
                compression: self.compression,
                linger: .milliseconds(20)
            ),
            logger: logger
        )
        var generator = SyntheticEvents(
            configuration: .init(subjects: self.subjects, brands: self.brands, seed: self.seed)
        )
        let script =
            self.scenario == "crises" ? IncidentScript.crises(origin: WallClock.nowMillis(), brands: self.brands) : nil
        var scripted: Int64 = 0
        var incidentEvents = 0
        let count = self.duration.map { $0 * self.rate } ?? self.count
        let clock = ContinuousClock()
        let start = clock.now
        let eventTimeStart = self.eventTimeRate.map { WallClock.nowMillis() - Int64(count) * 1000 / Int64($0) }
        for index in 0..<count {
            if self.rate > 0, index % 100 == 0 {
                try await Task.sleep(
                    until: start.advanced(by: .seconds(Double(index) / Double(self.rate))),
                    clock: clock
                )
                if let script {
                    let now = WallClock.nowMillis() - script.origin
                    for event in script.events(from: scripted, to: now) {
                        try producer.send(ProducerRecord(topic: self.topic, key: event.key, value: event.json))
                        incidentEvents += 1
                    }
                    scripted = now
                }
            }
            let occurredAt = eventTimeStart.map { $0 + Int64(index) * 1000 / Int64(self.eventTimeRate!) }
            let event = generator.next(occurredAtMillis: occurredAt ?? WallClock.nowMillis())
            try producer.send(ProducerRecord(topic: self.topic, key: event.key, value: event.json))
        }
        try await producer.flush(timeout: .seconds(120))
        let elapsed = clock.now - start
        let seconds = elapsed.seconds
        let total = count + incidentEvents
        guard producer.failedDeliveries == 0 else {
            throw ValidationError("\(producer.failedDeliveries) of \(total) events were not delivered")
        }
        print(
            "produced \(total) events (\(incidentEvents) scripted) to \(self.topic) in \(String(format: "%.2f", seconds)) s (\(Int(Double(total) / seconds))/s)"
        )
    }
}
