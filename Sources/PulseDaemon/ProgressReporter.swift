import Logging
import PulseCore
import ServiceLifecycle

/// Logs consumption progress at a fixed interval (one line per interval, never per event).
public struct ProgressReporter: Service {
    let stats: ConsumptionStats
    let interval: Duration
    let logger: Logger
    let printLine: (@Sendable (String) -> Void)?

    /// - Parameter printLine: when set, a human-readable line also goes there (the demo prints to stdout).
    public init(
        stats: ConsumptionStats,
        interval: Duration,
        logger: Logger,
        printLine: (@Sendable (String) -> Void)? = nil
    ) {
        self.stats = stats
        self.interval = interval
        self.logger = logger
        self.printLine = printLine
    }

    public func run() async throws {
        var previous = self.stats.current.messages
        let clock = ContinuousClock()
        var next = clock.now
        let seconds = Double(self.interval.components.seconds) + Double(self.interval.components.attoseconds) / 1e18
        while !Task.isShuttingDownGracefully {
            next = next.advanced(by: self.interval)
            let wake = next
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(until: wake, clock: clock) }
            } catch {
                return
            }
            let snapshot = self.stats.current
            let rate = Double(snapshot.messages - previous) / seconds
            previous = snapshot.messages
            self.logger.info(
                "Consumed",
                metadata: [
                    "consumer.messages": "\(snapshot.messages)",
                    "consumer.rate": "\(Int(rate))",
                    "consumer.partitions": "\(snapshot.assignment.count)",
                    "ingest.accepted": "\(snapshot.accepted)",
                    "ingest.dead_lettered": "\(snapshot.deadLettered)",
                    "ingest.duplicates": "\(snapshot.duplicates)",
                ]
            )
            if let printLine = self.printLine {
                printLine(Self.describe(snapshot, rate: rate))
            }
        }
    }

    /// One human-readable progress line.
    static func describe(_ snapshot: ConsumptionStats.Snapshot, rate: Double) -> String {
        let types = ["like", "comment", "share", "purchase", "view"]
            .map { "\($0) \(snapshot.acceptedByType[$0, default: 0])" }
            .joined(separator: ", ")
        var line =
            "consumed \(snapshot.messages) (\(Int(rate))/s, \(snapshot.assignment.count) partitions): "
            + "accepted \(snapshot.accepted) [\(types)], dead-lettered \(snapshot.deadLettered), "
            + "duplicates \(snapshot.duplicates), metric records \(snapshot.metricsRecords), late \(snapshot.lateRecords)"
        if let event = snapshot.lastEvent {
            line += "\n    latest: \(event.kind) on \(event.subjectID)"
            if let brand = event.brand { line += " (\(brand))" }
            line += " by \(event.userID)"
            if let text = event.text { line += ": \"\(text)\"" + (event.lang.map { " [\($0)]" } ?? "") }
            if let amount = event.amount { line += ": \(amount) \(event.currency ?? "")" }
        }
        return line
    }
}
