import Logging
import PulseCore
import PulseKafka
import ServiceLifecycle

/// Produces synthetic v1 events at a steady rate (the demo's live traffic).
public struct SyntheticProducerService: Service {
    let producer: KafkaProducer
    let topic: String
    let eventsPerSecond: Int
    let limit: Int?
    let generator: SyntheticEvents
    let logger: Logger

    /// - Parameters:
    ///   - limit: stop after this many events (`nil`: until shutdown).
    public init(
        producer: KafkaProducer,
        topic: String,
        eventsPerSecond: Int,
        limit: Int? = nil,
        generator: SyntheticEvents = SyntheticEvents(),
        logger: Logger
    ) {
        self.producer = producer
        self.topic = topic
        self.eventsPerSecond = max(1, eventsPerSecond)
        self.limit = limit
        self.generator = generator
        self.logger = logger
    }

    public func run() async throws {
        var generator = self.generator
        let clock = ContinuousClock()
        let start = clock.now
        let tick = Duration.milliseconds(10)
        var sent = 0
        var ticks: Int64 = 0
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            ticks += 1
            // Catch up to where the rate says we should be, so the average rate holds despite jitter.
            let due = Int(Int64(self.eventsPerSecond) * ticks / 100)
            while sent < due {
                if let limit = self.limit, sent >= limit { break }
                let event = generator.next(occurredAtMillis: WallClock.nowMillis())
                try self.producer.send(
                    ProducerRecord(topic: self.topic, key: event.key, value: event.json)
                )
                sent += 1
            }
            if let limit = self.limit, sent >= limit { break }
            let wake = start.advanced(by: tick * Int(ticks))
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(until: wake, clock: clock) }
            } catch {
                break
            }
        }
        try await self.producer.flush(timeout: .seconds(10))
        self.logger.info("Synthetic producer stopped", metadata: ["events.sent": "\(sent)"])
    }
}
