import CoreMetrics
import PulseCore

/// Ingestion counters, exported through swift-metrics (Prometheus names; dimensions from fixed sets only).
public struct IngestMetrics: Sendable {
    public let records: Counter
    public let accepted: Counter
    public let duplicates: Counter
    public let tombstones: Counter
    public let deadLettersTruncated: Counter
    private let deadLetters: [Rejection.Reason: Counter]

    /// - Parameter factory: where the metrics live; the process-wide bootstrapped factory by default.
    public init(factory: any MetricsFactory = MetricsSystem.factory) {
        self.records = Counter(label: "crowdpulse_records_consumed_total", dimensions: [], factory: factory)
        self.accepted = Counter(label: "crowdpulse_events_accepted_total", dimensions: [], factory: factory)
        self.duplicates = Counter(label: "crowdpulse_duplicates_total", dimensions: [], factory: factory)
        self.tombstones = Counter(label: "crowdpulse_tombstones_total", dimensions: [], factory: factory)
        self.deadLettersTruncated = Counter(
            label: "crowdpulse_dead_letters_truncated_total",
            dimensions: [],
            factory: factory
        )
        var deadLetters: [Rejection.Reason: Counter] = [:]
        for reason in Rejection.Reason.allCases {
            deadLetters[reason] = Counter(
                label: "crowdpulse_dead_letters_total",
                dimensions: [("reason", reason.rawValue)],
                factory: factory
            )
        }
        self.deadLetters = deadLetters
    }

    public func deadLetter(_ reason: Rejection.Reason) -> Counter { self.deadLetters[reason]! }
}
