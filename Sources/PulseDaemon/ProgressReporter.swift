import Logging
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
                ]
            )
            if let printLine = self.printLine {
                let sample = String(decoding: snapshot.lastValue, as: UTF8.self)
                printLine(
                    "consumed \(snapshot.messages) events (\(Int(rate))/s) from \(snapshot.assignment.count) partitions"
                        + (snapshot.lastOffset >= 0
                            ? "; latest \(snapshot.lastPartition)@\(snapshot.lastOffset): \(sample)" : "")
                )
            }
        }
    }
}
