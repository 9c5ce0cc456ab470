import Foundation
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
    let faults: Double
    let generator: SyntheticEvents
    let incidents: IncidentScript?
    let logger: Logger

    /// - Parameters:
    ///   - limit: stop after this many events (`nil`: until shutdown).
    ///   - faults: the share of records replaced by an invalid record or a duplicate of an earlier event.
    ///   - incidents: scripted incidents added on top of the background rate (its origin is the wall clock
    ///     at which offset 0 falls).
    public init(
        producer: KafkaProducer,
        topic: String,
        eventsPerSecond: Int,
        limit: Int? = nil,
        faults: Double = 0,
        generator: SyntheticEvents = SyntheticEvents(),
        incidents: IncidentScript? = nil,
        logger: Logger
    ) {
        self.incidents = incidents
        self.producer = producer
        self.topic = topic
        self.eventsPerSecond = max(1, eventsPerSecond)
        self.limit = limit
        self.faults = faults
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
        var faultRandom = SplitMix64(seed: 7)
        var faultCount = 0
        var previous = (key: "", json: "")
        var scripted: Int64 = Int64.min
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            ticks += 1
            if let script = self.incidents {
                let now = WallClock.nowMillis() - script.origin
                for event in script.events(from: scripted == Int64.min ? 0 : scripted, to: now) {
                    try self.producer.send(ProducerRecord(topic: self.topic, key: event.key, value: event.json))
                }
                scripted = now
            }
            // Catch up to where the rate says we should be, so the average rate holds despite jitter.
            let due = Int(Int64(self.eventsPerSecond) * ticks / 100)
            while sent < due {
                if let limit = self.limit, sent >= limit { break }
                let event = generator.next(occurredAtMillis: WallClock.nowMillis())
                var json = event.json
                var key = event.key
                if self.faults > 0, Double.random(in: 0..<1, using: &faultRandom) < self.faults {
                    json = Self.fault(number: faultCount, previous: previous.json, current: json)
                    // A duplicate travels with its original key, as a producer retry would.
                    if json == previous.json { key = previous.key }
                    faultCount += 1
                }
                previous = (event.key, event.json)
                try self.producer.send(
                    ProducerRecord(topic: self.topic, key: key, value: json)
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

    /// A faulty record for the demo: duplicates and the common ways producers get events wrong.
    static func fault(number: Int, previous: String, current: String) -> String {
        switch number % 6 {
        case 0: return previous.isEmpty ? current : previous  // a duplicate (same event_id)
        case 1: return String(current.prefix(current.count / 2))  // truncated JSON
        case 2: return current.replacingFirst(#""type":""#, with: #""type":"poke","was":""#)  // unknown type
        case 3: return current.replacingFirst(#""user_id""#, with: #""userid""#)  // missing user_id
        case 4: return current.replacingFirst(#""occurred_at":"#, with: #""occurred_at":"last tuesday","x":"#)
        default: return "\u{FEFF}" + current  // a byte order mark
        }
    }
}

extension String {
    fileprivate func replacingFirst(_ target: String, with replacement: String) -> String {
        guard let range = self.range(of: target) else { return self }
        return self.replacingCharacters(in: range, with: replacement)
    }
}
