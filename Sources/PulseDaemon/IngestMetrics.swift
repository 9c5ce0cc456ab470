import CoreMetrics
import PulseCore

/// Ingestion counters, exported through swift-metrics (Prometheus names; dimensions from fixed sets only).
public struct IngestMetrics: Sendable {
    public let records: Counter
    public let accepted: Counter
    public let duplicates: Counter
    public let tombstones: Counter
    public let deadLettersTruncated: Counter
    public let lateEvents: Counter
    public let metricRecords: Counter
    public let alertRecords: Counter
    /// Alerts firing now, by severity.
    public let alertsFiring: [AlertSeverity: Gauge]
    public let repartitionRecords: Counter
    public let windowsOpen: Gauge
    public let stateBytes: Gauge
    /// Event ids the deduplicators remember (8 bytes each, plus the set's overhead).
    public let dedupEntries: Gauge
    /// Entities the crisis detectors track, by level.
    public let detectorEntities: [EntityLevel: Gauge]
    public let rebalances: Counter
    public let deliveryFailures: Counter
    /// Broker append time (or producer time) of a consumed record → processed, per batch's last record.
    public let processingLatency: CoreMetrics.Timer
    /// A closed window's end → its metric record produced (includes the grace period).
    public let windowEmitDelay: CoreMetrics.Timer
    /// Broker append time of the record whose processing raised an alert state change → the alert record
    /// produced: the pipeline's own delay for alerts (queueing and processing), without the grace period.
    public let alertLatency: CoreMetrics.Timer
    /// Changelog checkpoints written, their bytes, and the time the pipeline spent encoding them.
    public let checkpoints: Counter
    public let checkpointBytes: Counter
    public let checkpointDuration: CoreMetrics.Timer
    /// Partitions restored from the changelog, and how long each restore took (read and decode).
    public let restores: Counter
    public let restoreDuration: CoreMetrics.Timer
    /// Partitions being restored right now (readiness waits for 0).
    public let restoring: Gauge
    /// Partitions assigned without a usable checkpoint (fresh, or the checkpoint could not be used).
    public let restoresEmpty: Counter
    /// Jumps in a partition's offsets that made the pipeline read records again.
    public let offsetGaps: Counter
    /// State dropped to stay within bounds: `detector` entities (cap or idle TTL), `dedup` ids forgotten
    /// before their horizon (cap).
    public let detectorEvictions: Counter
    public let dedupEvictions: Counter
    /// Subjects whose cascade memory was dropped before its TTL (`kind="cascade"`).
    public let cascadeEvictions: Counter
    private let deadLetters: [Rejection.Reason: Counter]
    private let acceptedByType: [Event.Kind: Counter]
    private let factory: any MetricsFactory

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
        var byType: [Event.Kind: Counter] = [:]
        for kind in Event.Kind.allCases {
            byType[kind] = Counter(
                label: "crowdpulse_events_consumed_total",
                dimensions: [("type", kind.description)],
                factory: factory
            )
        }
        self.acceptedByType = byType
        self.lateEvents = Counter(label: "crowdpulse_late_events_total", dimensions: [], factory: factory)
        self.metricRecords = Counter(
            label: "crowdpulse_records_produced_total",
            dimensions: [("topic", "metrics")],
            factory: factory
        )
        self.alertRecords = Counter(
            label: "crowdpulse_records_produced_total",
            dimensions: [("topic", "alerts")],
            factory: factory
        )
        var firing: [AlertSeverity: Gauge] = [:]
        for severity in AlertSeverity.allCases {
            firing[severity] = Gauge(
                label: "crowdpulse_alerts_firing",
                dimensions: [("severity", severity.rawValue)],
                factory: factory
            )
        }
        self.alertsFiring = firing
        self.repartitionRecords = Counter(
            label: "crowdpulse_records_produced_total",
            dimensions: [("topic", "repartition")],
            factory: factory
        )
        self.windowsOpen = Gauge(label: "crowdpulse_windows_open", dimensions: [], factory: factory)
        self.stateBytes = Gauge(label: "crowdpulse_state_bytes", dimensions: [], factory: factory)
        self.dedupEntries = Gauge(label: "crowdpulse_dedup_entries", dimensions: [], factory: factory)
        var entities: [EntityLevel: Gauge] = [:]
        for level in EntityLevel.allCases {
            entities[level] = Gauge(
                label: "crowdpulse_detector_entities",
                dimensions: [("level", level.rawValue)],
                factory: factory
            )
        }
        self.detectorEntities = entities
        self.rebalances = Counter(label: "crowdpulse_rebalances_total", dimensions: [], factory: factory)
        self.checkpoints = Counter(label: "crowdpulse_checkpoints_total", dimensions: [], factory: factory)
        self.offsetGaps = Counter(label: "crowdpulse_offset_gaps_total", dimensions: [], factory: factory)
        self.detectorEvictions = Counter(
            label: "crowdpulse_state_evictions_total",
            dimensions: [("kind", "detector")],
            factory: factory
        )
        self.dedupEvictions = Counter(
            label: "crowdpulse_state_evictions_total",
            dimensions: [("kind", "dedup")],
            factory: factory
        )
        self.cascadeEvictions = Counter(
            label: "crowdpulse_state_evictions_total",
            dimensions: [("kind", "cascade")],
            factory: factory
        )
        self.checkpointBytes = Counter(label: "crowdpulse_checkpoint_bytes_total", dimensions: [], factory: factory)
        self.checkpointDuration = CoreMetrics.Timer(
            label: "crowdpulse_checkpoint_seconds",
            dimensions: [],
            preferredDisplayUnit: .seconds,
            factory: factory
        )
        self.restores = Counter(label: "crowdpulse_restores_total", dimensions: [], factory: factory)
        self.restoresEmpty = Counter(label: "crowdpulse_restores_empty_total", dimensions: [], factory: factory)
        self.restoreDuration = CoreMetrics.Timer(
            label: "crowdpulse_restore_seconds",
            dimensions: [],
            preferredDisplayUnit: .seconds,
            factory: factory
        )
        self.restoring = Gauge(label: "crowdpulse_partitions_restoring", dimensions: [], factory: factory)
        self.deliveryFailures = Counter(label: "crowdpulse_delivery_failures_total", dimensions: [], factory: factory)
        self.processingLatency = CoreMetrics.Timer(
            label: "crowdpulse_event_processing_latency_seconds",
            dimensions: [],
            preferredDisplayUnit: .seconds,
            factory: factory
        )
        self.windowEmitDelay = CoreMetrics.Timer(
            label: "crowdpulse_window_emit_delay_seconds",
            dimensions: [],
            preferredDisplayUnit: .seconds,
            factory: factory
        )
        self.alertLatency = CoreMetrics.Timer(
            label: "crowdpulse_alert_latency_seconds",
            dimensions: [],
            preferredDisplayUnit: .seconds,
            factory: factory
        )
        self.factory = factory
    }

    public func deadLetter(_ reason: Rejection.Reason) -> Counter { self.deadLetters[reason]! }

    public func consumed(_ kind: Event.Kind) -> Counter { self.acceptedByType[kind]! }

    /// Consumer lag of one input partition (from librdkafka statistics); partitions are a bounded set.
    public func consumerLag(_ topic: String, _ partition: Int32) -> Gauge {
        Gauge(
            label: "crowdpulse_consumer_lag",
            dimensions: [("topic", topic), ("partition", String(partition))],
            factory: self.factory
        )
    }

    /// Wall clock − watermark of one input partition, in seconds: how far behind event time processing is.
    public func watermarkDelay(_ topic: String, _ partition: Int32) -> Gauge {
        Gauge(
            label: "crowdpulse_watermark_delay_seconds",
            dimensions: [("topic", topic), ("partition", String(partition))],
            factory: self.factory
        )
    }
}
