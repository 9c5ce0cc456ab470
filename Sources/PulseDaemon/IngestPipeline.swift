import CoreMetrics
import Logging
import PulseCore
import PulseKafka
import Synchronization

/// The per-partition ingestion of the running daemon: decode, validate, deduplicate, dead-letter.
///
/// State (one ``Ingestor`` per input partition, the offsets processed so far) is split into shards by
/// partition, each behind its own `Mutex`: a batch is processed by all shards at once (threads take shards as
/// they become free), the rebalance hooks and the commit path take one shard at a time between their batches.
/// Partitions share nothing but the producer, so sharding changes no output, only which thread computes it.
public final class IngestPipeline: Sendable {
    /// Largest dead-letter value sent as is; larger originals are truncated (with `crowdpulse.truncated`).
    /// librdkafka refuses messages above `message.max.bytes` (1 000 000 by default) before they leave.
    public static let maxDeadLetterBytes = 900_000

    private struct State {
        var ingestors: [TopicPartition: Ingestor] = [:]
        var engines: [TopicPartition: WindowEngine] = [:]
        /// The last watermark announced on the repartition topic per input partition.
        var announced: [TopicPartition: Int64] = [:]
        /// Brand stages, one per repartition partition this member owns.
        var mergers: [Int32: BrandMerger] = [:]
        var mergerActivity: [Int32: Int64] = [:]
        /// When each brand stage last heard from each source (wall clock).
        var heard: [Int32: [Int32: Int64]] = [:]
        var mergerStart: [Int32: Int64] = [:]
        /// Next offset to commit per partition (everything before it is processed and its outputs sent).
        var processed: [TopicPartition: Int64] = [:]
        /// Crisis detection: subjects per input partition, brands per brand stage.
        var detectors: [DetectorKey: CrisisDetector] = [:]
        var alertRecords = 0
        var retired = Ingestor.Counters()
        var metricsRecords = 0
        var lateRecords = 0
        /// Broker timestamp of the message being processed: alerts it causes measure their latency from it.
        var causeTimestamp: Int64?
        /// Partitions whose state changed since their last checkpoint.
        var changed: Set<TopicPartition> = []
        /// Where to move the consumer after this batch (records were skipped), and the gaps already
        /// checked once (a gap seen again at the same place is in the log itself).
        var seeks: [TopicPartition: Int64] = [:]
        var gapChecked: [TopicPartition: Int64] = [:]
        /// Evictions already counted, per state (restored state brings its own count along).
        var evictionsCounted: [DetectorKey: Int] = [:]
        var dedupEvictionsCounted: [TopicPartition: Int] = [:]
        var cascadeEvictionsCounted: [TopicPartition: Int] = [:]
    }

    /// Where a detector's metric records come from.
    enum DetectorKey: Hashable {
        case subject(TopicPartition)
        case brand(Int32)

        var level: EntityLevel {
            switch self {
            case .subject: .subject
            case .brand: .brand
            }
        }
    }

    /// One partition's state lives in exactly one shard: ``shardIndex(of:)``.
    private final class Shard: Sendable {
        let state = Mutex(State())
    }

    private let shards: [Shard]
    static let shardsPerThread = 4
    private let lastTick = Mutex<Int64?>(nil)
    /// When ``tick()`` last walked every open aggregate for `crowdpulse_state_bytes`.
    private let lastStateWalk = Mutex<Int64?>(nil)
    /// How often the state-bytes gauge is refreshed. It reads every open aggregate's heap buffers: done
    /// every second it was 2.4 % of a live daemon's CPU (cache misses, on the processing threads), for a
    /// gauge that Prometheus scrapes every 15–60 s.
    static let stateWalkMillis: Int64 = 10_000
    private let runner: ParallelRunner
    let detection: CrisisDetector.Configuration?
    let alerts: AlertDelivery.Configuration
    let alertDelivery: AlertDelivery?
    /// The query API's view, when the daemon serves one.
    let live: LiveView?
    let onAlert: @Sendable (AlertRecord) -> Void
    /// Consumer lag of an input partition, or (`nil`) of all of them, for the alerts' data freshness.
    let consumerLag: @Sendable (TopicPartition?) -> Int64?
    let alertScorer = MultilingualSentimentScorer()
    let producer: KafkaProducer
    let topics: TopicNames
    let decoder: EventDecoder
    let dedup: Deduplicator.Configuration
    let metrics: IngestMetrics
    let logger: Logger
    let windows: WindowEngine.Configuration
    let repartitionPartitions: Int32
    let sources: [Int32]
    let scorer: any SentimentScorer
    let nowMillis: @Sendable () -> Int64
    let onEvent: @Sendable (Event, TopicPartition) -> Void
    /// Whether a partition's log ends at the given next offset (nothing more to read): only then is a
    /// silent partition idle.
    let isCaughtUp: @Sendable (TopicPartition, Int64) -> Bool

    /// - Parameters:
    ///   - windows: the metrics windows; brand aggregates always go through the repartition topic.
    ///   - repartitionPartitions: partitions of the repartition topic (watermarks go to each).
    ///   - inputPartitions: partitions per input topic, so that brand stages wait for every source.
    public init(
        producer: KafkaProducer,
        topics: TopicNames,
        decoder: EventDecoder = EventDecoder(),
        dedup: Deduplicator.Configuration = Deduplicator.Configuration(),
        windows: WindowEngine.Configuration = WindowEngine.Configuration(),
        repartitionPartitions: Int32 = 1,
        inputPartitions: [String: Int32] = [:],
        scorer: any SentimentScorer = MultilingualSentimentScorer(),
        detection: CrisisDetector.Configuration? = CrisisDetector.Configuration(),
        alerts: AlertDelivery.Configuration = AlertDelivery.Configuration(),
        alertDelivery: AlertDelivery? = nil,
        consumerLag: @escaping @Sendable (TopicPartition?) -> Int64? = { _ in nil },
        live: LiveView? = nil,
        onAlert: @escaping @Sendable (AlertRecord) -> Void = { _ in },
        metrics: IngestMetrics,
        logger: Logger,
        nowMillis: @escaping @Sendable () -> Int64 = WallClock.nowMillis,
        isCaughtUp: @escaping @Sendable (TopicPartition, Int64) -> Bool = { _, _ in true },
        threads: Int = 1,
        onEvent: @escaping @Sendable (Event, TopicPartition) -> Void = { _, _ in }
    ) {
        // More shards than threads, taken by whichever thread is free: a shard whose windows close in this
        // batch (thousands of records at once) then holds up only its own thread, while the others take
        // the rest of the shards.
        let threads = max(1, threads)
        self.shards = (0..<(threads == 1 ? 1 : threads * Self.shardsPerThread)).map { _ in Shard() }
        self.runner = ParallelRunner(threads: threads, name: "crowdpulse-pipeline")
        self.isCaughtUp = isCaughtUp
        self.producer = producer
        self.topics = topics
        self.decoder = decoder
        self.dedup = dedup
        var windows = windows
        windows.brands = .partials
        self.windows = windows
        self.repartitionPartitions = max(1, repartitionPartitions)
        var sources: [Int32] = []
        for (index, topic) in topics.input.enumerated() {
            for partition in 0..<(inputPartitions[topic] ?? 0) { sources.append(Int32(index) * 1_000_000 + partition) }
        }
        self.sources = sources
        self.scorer = scorer
        self.detection = detection
        self.alerts = alerts
        self.alertDelivery = alertDelivery
        self.consumerLag = consumerLag
        self.live = live
        self.onAlert = onAlert
        self.metrics = metrics
        self.logger = logger
        self.nowMillis = nowMillis
        self.onEvent = onEvent
    }

    /// Identifies an input partition on the repartition topic.
    func sourceID(of partition: TopicPartition) -> Int32 {
        let topicIndex = self.topics.input.firstIndex(of: partition.topic) ?? 0
        return Int32(topicIndex) * 1_000_000 + partition.partition
    }

    /// The shard that holds `partition`'s state (for an input or a repartition topic alike).
    @inline(__always)
    private func shardIndex(of partition: Int32) -> Int {
        self.shards.count == 1 ? 0 : Int(partition) % self.shards.count
    }

    private func shard(of partition: TopicPartition) -> Shard {
        self.shards[self.shardIndex(of: partition.partition)]
    }

    /// Metric and late records produced so far.
    public var outputCounts: (metrics: Int, late: Int) {
        self.shards.reduce(into: (metrics: 0, late: 0)) { total, shard in
            shard.state.withLock {
                total.metrics += $0.metricsRecords
                total.late += $0.lateRecords
            }
        }
    }

    /// Alert records produced so far.
    public var alertCount: Int {
        self.shards.reduce(0) { total, shard in total + shard.state.withLock { $0.alertRecords } }
    }

    /// Whether some partition's state changed since its last checkpoint (it has offsets to commit).
    public var hasUncommittedChanges: Bool {
        self.shards.contains { shard in shard.state.withLock { !$0.changed.isEmpty } }
    }

    /// Totals over every partition this pipeline has processed.
    public var counters: Ingestor.Counters {
        var total = Ingestor.Counters()
        for shard in self.shards {
            shard.state.withLock { state in
                total.add(state.retired)
                for ingestor in state.ingestors.values { total.add(ingestor.counters) }
            }
        }
        return total
    }

    /// Processes one batch: accepted events go to `onEvent`; rejected records are sent to the dead-letter
    /// topic (delivery is confirmed before their offsets are committed, see ``commitOffsets(for:)``).
    ///
    /// - Throws: when a dead letter cannot even be queued (the producer is broken).
    public func process(_ batch: ConsumerBatch) throws(KafkaError) {
        let now = self.nowMillis()
        defer {
            if let last = batch.last, let timestamp = last.timestamp, timestamp > 0 {
                self.metrics.processingLatency.recordNanoseconds(max(0, now - timestamp) * 1_000_000)
            }
        }
        if self.shards.count == 1 || batch.count == 1 {
            let shard = batch.first.map { self.shardIndex(of: $0.partition) } ?? 0
            try self.process(batch, shard: shard, positions: Array(batch.indices), now: now)
            return
        }
        // The batch split by shard in one pass; then the shards run on the runner's threads (the calling
        // thread takes part, so this never waits for a thread that is not there).
        var split = [[Int]](repeating: [], count: self.shards.count)
        for position in batch.indices { split[self.shardIndex(of: batch[position].partition)].append(position) }
        let positions = split
        let failure = Mutex<KafkaError?>(nil)
        self.runner.run(tasks: self.shards.count) { index in
            do throws(KafkaError) {
                try self.process(batch, shard: index, positions: positions[index], now: now)
            } catch {
                failure.withLock { $0 = $0 ?? error }
            }
        }
        if let error = failure.withLock({ $0 }) { throw error }
    }

    /// One shard's part of a batch: the messages at `positions` (those of the partitions it holds), in order.
    private func process(_ batch: ConsumerBatch, shard index: Int, positions: [Int], now: Int64) throws(KafkaError) {
        // Counted per batch: one metrics call per counter, not per record.
        var accepted = 0
        var duplicates = 0
        var tombstones = 0
        var byKind = [0, 0, 0, 0, 0]
        var inputRecords = 0  // the repartition topic's own records are not input
        defer {
            self.metrics.records.increment(by: inputRecords)
            self.metrics.accepted.increment(by: accepted)
            self.metrics.duplicates.increment(by: duplicates)
            self.metrics.tombstones.increment(by: tombstones)
            for kind in Event.Kind.allCases where byKind[Int(kind.rawValue)] > 0 {
                self.metrics.consumed(kind).increment(by: byKind[Int(kind.rawValue)])
            }
        }
        try self.shards[index].state.withLock { (state: inout State) throws(KafkaError) in
            // A run of messages from one partition keeps the partition's ingestor, engine and next offset
            // out of their dictionaries until the partition changes: no hashing per message. Parked again
            // before anything that reads the dictionaries, and on the way out (also when throwing).
            var run: (partition: TopicPartition, ingestor: Ingestor, engine: WindowEngine, next: Int64)? = nil
            func park() {
                guard let current = run else { return }
                state.ingestors[current.partition] = current.ingestor
                state.engines[current.partition] = current.engine
                state.processed[current.partition] = current.next
                state.changed.insert(current.partition)
                run = nil
            }
            defer { park() }
            var skipping: Set<TopicPartition> = []
            for position in positions {
                let message = batch[position]
                let partition = message.topicPartition
                if !skipping.isEmpty, skipping.contains(partition) { continue }
                // Records follow each other but for transaction markers (one offset per transaction). A
                // larger jump means the consumer's position moved past records this state has not seen
                // (librdkafka 2.0 can apply a stale committed offset during a cooperative rebalance):
                // read again from where the state ends, once; a gap that is still there is real (aborted
                // transactions, compaction).
                let expected = run?.partition == partition ? run!.next : state.processed[partition]
                if let expected, message.offset > expected + 1, state.gapChecked[partition] != expected {
                    park()
                    state.gapChecked[partition] = expected
                    state.seeks[partition] = expected
                    skipping.insert(partition)
                    self.metrics.offsetGaps.increment()
                    self.logger.warning(
                        "Offsets skipped by the consumer; reading them again",
                        metadata: [
                            "kafka.partition": "\(partition)", "expected": "\(expected)", "got": "\(message.offset)",
                        ]
                    )
                    continue
                }
                if message.topic == self.topics.repartition {
                    park()
                    defer { state.processed[partition] = message.offset + 1 }
                    state.changed.insert(partition)
                    state.causeTimestamp = message.timestamp
                    try self.handleRepartition(message, now: now, state: &state)
                    continue
                }
                inputRecords += 1
                if run?.partition != partition {
                    park()
                    run = (
                        partition,
                        state.ingestors.removeValue(forKey: partition)
                            ?? Ingestor(decoder: self.decoder, deduplicator: Deduplicator(configuration: self.dedup)),
                        state.engines.removeValue(forKey: partition)
                            ?? WindowEngine(configuration: self.windows, scorer: self.scorer),
                        message.offset + 1
                    )
                }
                // Processed even if what follows throws, as before: the batch is abandoned then anyway.
                run!.next = message.offset + 1
                let outcome: Ingestor.Outcome
                if message.isTombstone {
                    outcome = run!.ingestor.ingest(nil, nowMillis: now)
                } else {
                    outcome = message.withValueBytes { run!.ingestor.ingest($0, nowMillis: now) }
                }
                switch outcome {
                case .accepted(let event):
                    accepted += 1
                    byKind[Int(event.kind.rawValue)] += 1
                    self.onEvent(event, partition)
                    let outputs = run!.engine.add(event, nowWall: now)
                    state.causeTimestamp = message.timestamp
                    try self.emit(outputs, for: message, state: &state)
                case .duplicate:
                    duplicates += 1
                case .tombstone:
                    tombstones += 1
                case .rejected(let rejection):
                    self.metrics.deadLetter(rejection.reason).increment()
                    try self.sendDeadLetter(message, rejection)
                }
            }
            park()
            try self.announceWatermarks(state: &state)
        }
    }

    /// Runs the wall-clock timers: idle close of silent partitions and brand stages; refreshes the gauges.
    /// Called between batches; does its work at most once per second, and refreshes the state-bytes gauge
    /// (a walk over every open aggregate) once per ``stateWalkMillis``.
    public func tick() throws(KafkaError) {
        let now = self.nowMillis()
        let due = self.lastTick.withLock { last in
            if let last, now - last < 1000 { return false }
            last = now
            return true
        }
        guard due else { return }
        var totals = TickTotals()
        totals.walksState = self.lastStateWalk.withLock { last in
            if let last, now - last < Self.stateWalkMillis { return false }
            last = now
            return true
        }
        for shard in self.shards {
            try shard.state.withLock { (state: inout State) throws(KafkaError) in
                try self.tick(&state, now: now, totals: &totals)
            }
        }
        for (level, gauge) in self.metrics.detectorEntities { gauge.record(totals.tracked[level] ?? 0) }
        for (severity, gauge) in self.metrics.alertsFiring { gauge.record(totals.firing[severity] ?? 0) }
        self.metrics.windowsOpen.record(totals.windows)
        if totals.walksState { self.metrics.stateBytes.record(totals.bytes) }
        self.metrics.dedupEntries.record(totals.dedupEntries)
    }

    /// What the gauges show, summed over the shards.
    private struct TickTotals {
        /// Whether this tick sums ``bytes``.
        var walksState = false
        var windows = 0
        var bytes = 0
        var dedupEntries = 0
        var firing: [AlertSeverity: Int] = [:]
        var tracked: [EntityLevel: Int] = [:]
    }

    private func tick(_ state: inout State, now: Int64, totals: inout TickTotals) throws(KafkaError) {
        state.causeTimestamp = nil  // idle closes are caused by the wall clock, not by a record
        for (partition, engine) in state.engines {
            totals.windows += engine.openWindowCount
            if totals.walksState { totals.bytes += engine.stateBytes }
            if engine.watermark > Int64.min {
                self.metrics.watermarkDelay(partition.topic, partition.partition)
                    .record(Double(now - engine.watermark) / 1000)
            }
        }
        for merger in state.mergers.values { totals.windows += merger.openWindowCount }
        for detector in state.detectors.values {
            for alert in detector.firing { totals.firing[alert.severity, default: 0] += 1 }
            totals.tracked[detector.level, default: 0] += detector.entityCount
        }
        for (key, detector) in state.detectors {
            let new = detector.evictions - (state.evictionsCounted[key] ?? 0)
            if new > 0 { self.metrics.detectorEvictions.increment(by: new) }
            state.evictionsCounted[key] = detector.evictions
        }
        for (partition, ingestor) in state.ingestors {
            totals.dedupEntries += ingestor.deduplicator.count
            let evicted = ingestor.deduplicator.evictedEarly
            let new = evicted - (state.dedupEvictionsCounted[partition] ?? 0)
            if new > 0 { self.metrics.dedupEvictions.increment(by: new) }
            state.dedupEvictionsCounted[partition] = evicted
        }
        for (partition, engine) in state.engines {
            let new = engine.cascadesForgotten - (state.cascadeEvictionsCounted[partition] ?? 0)
            if new > 0 { self.metrics.cascadeEvictions.increment(by: new) }
            state.cascadeEvictionsCounted[partition] = engine.cascadesForgotten
        }
        for partition in state.engines.keys.sorted() {
            // Silent is not idle when the log has records this member has not read yet (a rebalance
            // pauses fetching, a restore or a slow batch holds it up): closing then would make those
            // records late. Checked only when the idle timeout has passed.
            if state.engines[partition]!.isIdle(nowWall: now), let next = state.processed[partition],
                !self.isCaughtUp(partition, next)
            {
                state.engines[partition]!.resumeIdleClock(nowWall: now)
                continue
            }
            // Moved out, not copied: a copy would make the mutation duplicate every open window.
            var engine = state.engines.removeValue(forKey: partition)!
            let outputs = engine.idle(nowWall: now)
            state.engines[partition] = engine
            guard !outputs.isEmpty else { continue }
            state.changed.insert(partition)
            self.logger.info(
                "Idle partition: its windows closed",
                metadata: ["kafka.partition": "\(partition)", "watermark": "\(engine.watermark)"]
            )
            try self.emit(outputs, sourceKey: nil, source: partition, state: &state)
            try self.announce(partition, watermark: engine.watermark, idle: true)
            state.announced[partition] = engine.watermark
        }
        // Brand stages wait twice the idle timeout, so that sources that have spoken announce their own
        // idle close (with their last partials) first. A source never heard from (a partition without
        // traffic) stops holding brand windows back after that long; so does a stage with no traffic.
        let patience = 2 * self.windows.idleCloseMillis
        for (repartition, heard) in state.heard {
            guard var merger = state.mergers.removeValue(forKey: repartition) else { continue }
            defer { state.mergers[repartition] = merger }
            for source in merger.activeSources
            where heard[source] == nil && now - (state.mergerStart[repartition] ?? now) >= patience {
                try self.produce(merger.markIdle(source: source), state: &state, from: .brand(repartition))
                state.changed.insert(TopicPartition(self.topics.repartition, repartition))
                self.logger.info(
                    "Brand stage: a source never heard from is treated as idle",
                    metadata: ["repartition": "\(repartition)", "source": "\(source)"]
                )
            }
        }
        for (repartition, activity) in state.mergerActivity where now - activity >= patience {
            guard state.mergers[repartition]?.openWindowCount ?? 0 > 0,
                var merger = state.mergers.removeValue(forKey: repartition)
            else { continue }
            let records = merger.closeAll()
            state.mergers[repartition] = merger
            state.changed.insert(TopicPartition(self.topics.repartition, repartition))
            self.logger.info(
                "Brand stage without traffic: its windows closed",
                metadata: ["repartition": "\(repartition)", "records": "\(records.count)"]
            )
            try self.produce(records, state: &state, from: .brand(repartition))
        }
    }

    private func emit(_ outputs: [WindowEngine.Output], for message: ConsumerMessage, state: inout State)
        throws(KafkaError)
    {
        guard !outputs.isEmpty else { return }
        var late: [(Int64, Int64, Int64)] = []
        var others: [WindowEngine.Output] = []
        for output in outputs {
            if case .late(let start, let end, let lateness) = output {
                late.append((start, end, lateness))
            } else {
                others.append(output)
            }
        }
        for (start, end, lateness) in late {
            let headers = LateRecord.headers(
                windowStart: start,
                windowEnd: end,
                latenessMillis: lateness,
                sourceTopic: message.topic,
                partition: message.partition,
                offset: message.offset
            ).map { KafkaHeader(name: $0.name, string: $0.value) }
            try self.producer.send(
                ProducerRecord(
                    topic: self.topics.late,
                    key: message.key.map(Array.init),
                    value: Array(message.value),
                    headers: headers
                )
            )
            state.lateRecords += 1
            self.metrics.lateEvents.increment()
        }
        try self.emit(others, sourceKey: nil, source: message.topicPartition, state: &state)
    }

    private func emit(
        _ outputs: [WindowEngine.Output],
        sourceKey: [UInt8]?,
        source: TopicPartition,
        state: inout State
    ) throws(KafkaError) {
        for output in outputs {
            switch output {
            case .metrics(let record):
                try self.produce([record], state: &state, from: .subject(source))
            case .brandPartial(let brand, let start, let aggregate, let isFinal):
                let message = RepartitionMessage(
                    kind: .partial,
                    source: self.sourceID(of: source),
                    brand: brand,
                    windowStart: start,
                    aggregate: aggregate,
                    final: isFinal ? nil : false
                )
                try self.producer.send(
                    ProducerRecord(topic: self.topics.repartition, key: Array(brand.utf8), value: message.encoded())
                )
                self.metrics.repartitionRecords.increment()
            case .late:
                break  // only produced for a consumed message, with its bytes
            }
        }
    }

    private func produce(_ records: [MetricsRecord], state: inout State, from origin: DetectorKey) throws(KafkaError) {
        let now = self.nowMillis()
        defer {
            // Detection runs on the final records, up to the latest window they close (event time).
            if let configuration = self.detection {
                var detector =
                    state.detectors.removeValue(forKey: origin)
                    ?? CrisisDetector(level: origin.level, configuration: configuration)
                var through = Int64.min
                for record in records where record.isFinal && record.key.level == origin.level {
                    detector.observe(record)
                    through = max(through, record.windowEnd)
                }
                let events = through == Int64.min ? [] : detector.advance(to: through)
                state.detectors[origin] = detector
                var lag: Int64? = nil
                if !events.isEmpty {
                    switch origin {
                    case .subject(let partition): lag = self.consumerLag(partition)
                    case .brand: lag = self.consumerLag(nil)
                    }
                }
                for event in events {
                    let alert = AlertRecord(
                        event: event,
                        scorer: self.alertScorer,
                        watermark: event.at,
                        consumerLag: lag,
                        runbookURL: self.alerts.runbookURL,
                        generatorURL: "crowdpulse://\(self.topics.alerts)",
                        resendIntervalMillis: self.alerts.resendIntervalMillis
                    )
                    do {
                        let rendered = alert.render(emittedAt: now)
                        try self.producer.send(
                            ProducerRecord(
                                topic: self.topics.alerts,
                                key: Array(alert.fingerprint.utf8),
                                value: Array(rendered.utf8)
                            )
                        )
                        state.alertRecords += 1
                        self.metrics.alertRecords.increment()
                        self.alertDelivery?.submit(alert)
                        if let cause = state.causeTimestamp, cause > 0 {
                            self.metrics.alertLatency.recordNanoseconds(max(0, now - cause) * 1_000_000)
                        }
                        self.live?.alert(alert, rendered: rendered, emittedAt: now)
                        self.onAlert(alert)
                        self.logger.notice(
                            "alert",
                            metadata: [
                                "status": "\(event.change.rawValue)", "alertname": "\(event.alertname)",
                                "level": "\(event.level.rawValue)", "entity": "\(event.entity)",
                                "severity": "\(event.severity.rawValue)",
                                "assessment": "\(event.evaluation.authenticity.verdict.rawValue)",
                            ]
                        )
                    } catch {
                        self.logger.error("alert not queued", metadata: ["error": "\(error)"])
                    }
                }
            }
        }
        var finals: [(record: MetricsRecord, rendered: [UInt8])] = []
        for record in records {
            let rendered = record.renderUTF8()
            if record.isFinal {
                self.metrics.windowEmitDelay.recordNanoseconds(max(0, now - record.windowEnd) * 1_000_000)
                if self.live != nil { finals.append((record, rendered)) }
            }
            self.metrics.metricRecords.increment()
            try self.producer.send(
                ProducerRecord(topic: self.topics.metrics, key: Array(record.recordKey.utf8), value: rendered)
            )
            state.metricsRecords += 1
        }
        self.live?.record(finals)
    }

    /// Tells every brand stage how far each input partition's watermark has got (after its partials).
    private func announceWatermarks(state: inout State) throws(KafkaError) {
        // Brand windows can only close when a watermark passes a window end, so a watermark is announced
        // when it crosses one (window ends are size + k·step), not on every batch.
        let size = self.windows.window.sizeMillis
        let step = self.windows.window.stepMillis
        func boundary(_ watermark: Int64?) -> Int64? {
            guard let watermark, watermark != Int64.min else { return nil }
            return Deduplicator.floorDiv(watermark - size, step)
        }
        for (partition, engine) in state.engines
        where boundary(engine.watermark) != boundary(state.announced[partition]) {
            try self.announce(partition, watermark: engine.watermark, idle: false)
            state.announced[partition] = engine.watermark
        }
    }

    private func announce(_ partition: TopicPartition, watermark: Int64, idle: Bool) throws(KafkaError) {
        let message = RepartitionMessage(
            kind: .watermark,
            source: self.sourceID(of: partition),
            watermark: watermark,
            idle: idle
        ).encoded()
        for target in 0..<self.repartitionPartitions {
            try self.producer.send(ProducerRecord(topic: self.topics.repartition, partition: target, value: message))
        }
    }

    private func handleRepartition(_ message: ConsumerMessage, now: Int64, state: inout State) throws(KafkaError) {
        guard let decoded = RepartitionMessage.decode(message.value) else {
            self.logger.warning(
                "Unreadable repartition record skipped",
                metadata: ["kafka.partition": "\(message.partition)", "kafka.offset": "\(message.offset)"]
            )
            return
        }
        var merger =
            state.mergers.removeValue(forKey: message.partition)
            ?? BrandMerger(configuration: self.windows, sources: self.sources)
        defer { state.mergers[message.partition] = merger }
        if state.mergerStart[message.partition] == nil { state.mergerStart[message.partition] = now }
        state.heard[message.partition, default: [:]][decoded.source] = now
        state.mergerActivity[message.partition] = now
        switch decoded.kind {
        case .partial:
            if let brand = decoded.brand, let start = decoded.windowStart, let aggregate = decoded.aggregate {
                let records = merger.add(
                    brand: brand,
                    windowStart: start,
                    aggregate: aggregate,
                    source: decoded.source,
                    isFinal: decoded.final ?? true
                )
                try self.produce(records, state: &state, from: .brand(message.partition))
            }
        case .watermark:
            if let watermark = decoded.watermark {
                let records = merger.advance(source: decoded.source, watermark: watermark, idle: decoded.idle ?? false)
                try self.produce(records, state: &state, from: .brand(message.partition))
            }
        }
    }

    private func sendDeadLetter(_ message: ConsumerMessage, _ rejection: Rejection) throws(KafkaError) {
        var value = Array(message.value)
        var truncated = false
        if value.count > Self.maxDeadLetterBytes {
            value.removeSubrange(Self.maxDeadLetterBytes...)
            truncated = true
            self.metrics.deadLettersTruncated.increment()
        }
        let headers = DeadLetter.headers(
            for: rejection,
            sourceTopic: message.topic,
            partition: message.partition,
            offset: message.offset,
            truncated: truncated
        ).map { KafkaHeader(name: $0.name, string: $0.value) }
        let record = ProducerRecord(
            topic: self.topics.deadLetter,
            key: message.key.map(Array.init),
            value: value,
            headers: headers
        )
        do {
            try self.producer.send(record)
        } catch {
            // A broker's smaller message.max.bytes (configured through pass-through) still has to fit: keep
            // the first 64 KiB and say so.
            guard error.detail?.name == "MSG_SIZE_TOO_LARGE" || error.detail?.name == "_MSG_SIZE_TOO_LARGE" else {
                throw error
            }
            var smaller = record
            smaller.value = Array(value.prefix(65_536))
            if !truncated {
                smaller.headers.append(KafkaHeader(name: DeadLetter.truncatedHeader, string: "true"))
                self.metrics.deadLettersTruncated.increment()
            }
            try self.producer.send(smaller)
        }
    }

    /// The positions to seek to before the next batch (records the consumer skipped); cleared.
    public func takeSeeks() -> [TopicPartitionOffset] {
        self.shards.flatMap { shard in
            shard.state.withLock { state in
                defer { state.seeks = [:] }
                return state.seeks.map { TopicPartitionOffset($0.key, offset: $0.value) }
            }
        }
    }

    /// Forgets partitions that moved to another member (their dedup state goes with them).
    public func drop(_ partitions: [TopicPartition]) {
        for partition in partitions {
            self.shard(of: partition).state.withLock { state in
                if let ingestor = state.ingestors.removeValue(forKey: partition) {
                    state.retired.add(ingestor.counters)
                }
                state.engines.removeValue(forKey: partition)
                state.announced.removeValue(forKey: partition)
                state.detectors.removeValue(forKey: .subject(partition))
                if partition.topic == self.topics.repartition {
                    state.mergers.removeValue(forKey: partition.partition)
                    state.mergerActivity.removeValue(forKey: partition.partition)
                    state.heard.removeValue(forKey: partition.partition)
                    state.mergerStart.removeValue(forKey: partition.partition)
                    state.detectors.removeValue(forKey: .brand(partition.partition))
                }
                state.processed.removeValue(forKey: partition)
                state.changed.remove(partition)
                state.seeks.removeValue(forKey: partition)
                state.gapChecked.removeValue(forKey: partition)
                state.evictionsCounted.removeValue(forKey: .subject(partition))
                state.dedupEvictionsCounted.removeValue(forKey: partition)
                state.cascadeEvictionsCounted.removeValue(forKey: partition)
                if partition.topic == self.topics.repartition {
                    state.evictionsCounted.removeValue(forKey: .brand(partition.partition))
                }
            }
        }
    }

    // MARK: - Checkpoints

    /// Version of the per-partition state layout in changelog checkpoints.
    static let stateFormat: UInt8 = 1
    static let inputState: UInt8 = 1
    static let brandStageState: UInt8 = 2

    /// Identifies the state layout and the window grid, so that a checkpoint is only restored into a
    /// pipeline whose windows line up with it.
    public static func stateFingerprint(windows: WindowEngine.Configuration) -> UInt64 {
        stableHash("crowdpulse-state/\(Self.stateFormat)/\(windows.window.sizeMillis)/\(windows.window.stepMillis)")
    }

    /// The encoded state of each partition (of `partitions`, or all) that changed since its last
    /// checkpoint, with the offset it reflects; and the offsets to commit, taken at the same instant.
    public func checkpoint(
        _ partitions: [TopicPartition]? = nil
    ) -> (snapshots: [Changelog.Snapshot], offsets: [TopicPartitionOffset]) {
        // Captured and encoded by every shard at once: with many partitions this is most of a commit's cost.
        let parts = Mutex(
            [(snapshots: [Changelog.Snapshot], offsets: [TopicPartitionOffset])](
                repeating: ([], []),
                count: self.shards.count
            )
        )
        self.runner.run(tasks: self.shards.count) { index in
            let part = self.shards[index].state.withLock { self.capture(partitions, state: &$0) }
            // Encoded outside both locks: under `parts`' lock the shards would encode one at a time.
            let snapshots = part.captures.map { $0.encoded() }
            parts.withLock { $0[index] = (snapshots, part.offsets) }
        }
        let all = parts.withLock { $0 }
        var snapshots = all.flatMap(\.snapshots)
        var offsets = all.flatMap(\.offsets)
        snapshots.sort { $0.source < $1.source }
        offsets.sort { $0.topicPartition < $1.topicPartition }
        return (snapshots, offsets)
    }

    /// Like ``checkpoint(_:)``, but returns the changed partitions' state unencoded: copies of their values,
    /// which cost next to nothing to take (Swift collections are copied on write), so that the encoding can
    /// run off the pipeline's threads while processing goes on. The pipeline pays instead the first time it
    /// changes each copied collection, once per checkpoint.
    public func capture(
        _ partitions: [TopicPartition]? = nil
    ) -> (captures: [StateCapture], offsets: [TopicPartitionOffset]) {
        var captures: [StateCapture] = []
        var offsets: [TopicPartitionOffset] = []
        for shard in self.shards {
            let part = shard.state.withLock { self.capture(partitions, state: &$0) }
            captures += part.captures
            offsets += part.offsets
        }
        captures.sort { $0.source < $1.source }
        offsets.sort { $0.topicPartition < $1.topicPartition }
        return (captures, offsets)
    }

    /// One shard's changed partitions and offsets, taken at the same instant.
    private func capture(
        _ partitions: [TopicPartition]?,
        state: inout State
    ) -> (captures: [StateCapture], offsets: [TopicPartitionOffset]) {
        var captures: [StateCapture] = []
        for partition in state.changed.sorted() where partitions?.contains(partition) ?? true {
            guard let offset = state.processed[partition] else { continue }
            state.changed.remove(partition)
            let parts: StateCapture.Parts
            if partition.topic == self.topics.repartition {
                parts = .brandStage(
                    merger: state.mergers[partition.partition],
                    detector: state.detectors[.brand(partition.partition)]
                )
            } else {
                parts = .input(
                    deduplicator: state.ingestors[partition]?.deduplicator.checkpoint,
                    engine: state.engines[partition],
                    detector: state.detectors[.subject(partition)]
                )
            }
            captures.append(StateCapture(source: partition, offset: offset, parts: parts))
        }
        let offsets = state.processed
            .filter { partitions?.contains($0.key) ?? true }
            .map { TopicPartitionOffset($0.key, offset: $0.value) }
        return (captures, offsets)
    }

    /// One partition's state at a checkpoint, before it is encoded (``IngestPipeline/capture(_:)``).
    public struct StateCapture: Sendable {
        enum Parts: Sendable {
            case input(deduplicator: Deduplicator.Checkpoint?, engine: WindowEngine?, detector: CrisisDetector?)
            case brandStage(merger: BrandMerger?, detector: CrisisDetector?)
        }

        public var source: TopicPartition
        public var offset: Int64
        var parts: Parts

        /// The checkpoint ``IngestPipeline/install(_:offset:state:)`` reads back.
        /// The deduplicator's and the cascades' full blocks are left out as segments, which the changelog
        /// stores once.
        public func encoded() -> Changelog.Snapshot {
            var writer = BinaryWriter(capacity: 4096)
            writer.segmenting = true
            writer.maximumSegmentBytes = Changelog.chunkBytes  // each segment is one changelog record
            writer.byte(IngestPipeline.stateFormat)
            switch self.parts {
            case .brandStage(let merger, let detector):
                writer.byte(IngestPipeline.brandStageState)
                writer.optional(merger) { $1.write(to: &$0) }
                writer.optional(detector) { $1.write(to: &$0) }
            case .input(let deduplicator, let engine, let detector):
                writer.byte(IngestPipeline.inputState)
                writer.optional(deduplicator) { $1.write(to: &$0) }
                writer.optional(engine) { $1.write(to: &$0) }
                writer.optional(detector) { $1.write(to: &$0) }
            }
            return Changelog.Snapshot(
                source: self.source,
                offset: self.offset,
                state: writer.bytes,
                segments: writer.segments
            )
        }
    }

    /// What ``install(_:offset:state:)`` restored.
    public struct RestoredState: Sendable, CustomStringConvertible {
        public var windows = 0
        public var entities = 0
        public var detectorEntities = 0
        public var dedupEntries = 0

        public var description: String {
            "\(self.windows) open windows over \(self.entities) entities, \(self.detectorEntities) detector entities, "
                + "\(self.dedupEntries) dedup entries"
        }
    }

    /// Replaces `partition`'s state with a checkpoint's, before the partition is consumed from `offset`.
    ///
    /// - Throws: when the bytes are not a checkpoint this version can read (the partition's state is
    ///   left empty then).
    @discardableResult
    public func install(_ partition: TopicPartition, offset: Int64, state bytes: [UInt8]) throws(BinaryDecodingError)
        -> RestoredState
    {
        let now = self.nowMillis()
        var reader = BinaryReader(bytes)
        guard try reader.byte() == Self.stateFormat else {
            throw BinaryDecodingError(offset: 0, reason: "unknown state format")
        }
        let kind = try reader.byte()
        // Decoded even when detection is off now, to read past it; kept only when it is on.
        let detectorConfiguration = self.detection ?? CrisisDetector.Configuration()
        var summary = RestoredState()
        if partition.topic == self.topics.repartition {
            guard kind == Self.brandStageState else {
                throw BinaryDecodingError(offset: 1, reason: "not a brand stage")
            }
            let merger = try reader.optional { (reader: inout BinaryReader) throws(BinaryDecodingError) in
                try BrandMerger(reading: &reader, configuration: self.windows)
            }
            let detector = try reader.optional { (reader: inout BinaryReader) throws(BinaryDecodingError) in
                try CrisisDetector(reading: &reader, level: .brand, configuration: detectorConfiguration)
            }
            summary.windows = merger?.openWindowCount ?? 0
            summary.detectorEntities = detector?.entityCount ?? 0
            guard reader.isAtEnd else { throw BinaryDecodingError(offset: reader.offset, reason: "trailing bytes") }
            self.shard(of: partition).state.withLock { state in
                state.mergers[partition.partition] = merger
                state.detectors[.brand(partition.partition)] = self.detection == nil ? nil : detector
                // Counted by the process that evicted them.
                state.evictionsCounted[.brand(partition.partition)] = detector?.evictions
                state.mergerStart[partition.partition] = now
                state.mergerActivity[partition.partition] = now
                // Sources that spoke before the checkpoint are not "never heard": while their partitions
                // move between members they are silent, not idle, and must not be closed over.
                var heard: [Int32: Int64] = [:]
                for source in merger?.announcedSources ?? [] { heard[source] = now }
                state.heard[partition.partition] = heard
                state.processed[partition] = offset
            }
        } else {
            guard kind == Self.inputState else {
                throw BinaryDecodingError(offset: 1, reason: "not an input partition")
            }
            let deduplicator = try reader.optional { (reader: inout BinaryReader) throws(BinaryDecodingError) in
                try Deduplicator(reading: &reader, configuration: self.dedup)
            }
            var engine = try reader.optional { (reader: inout BinaryReader) throws(BinaryDecodingError) in
                try WindowEngine(reading: &reader, configuration: self.windows, scorer: self.scorer)
            }
            let detector = try reader.optional { (reader: inout BinaryReader) throws(BinaryDecodingError) in
                try CrisisDetector(reading: &reader, level: .subject, configuration: detectorConfiguration)
            }
            // Idle close counts from now: the time the partition spent unowned is not the stream's silence.
            engine?.resumeIdleClock(nowWall: now)
            summary.windows = engine?.openWindowCount ?? 0
            summary.entities = engine?.openEntityCount ?? 0
            summary.detectorEntities = detector?.entityCount ?? 0
            summary.dedupEntries = deduplicator?.count ?? 0
            guard reader.isAtEnd else { throw BinaryDecodingError(offset: reader.offset, reason: "trailing bytes") }
            self.shard(of: partition).state.withLock { state in
                var ingestor = Ingestor(decoder: self.decoder, deduplicator: Deduplicator(configuration: self.dedup))
                if let deduplicator { ingestor.deduplicator = deduplicator }
                if let previous = state.ingestors.updateValue(ingestor, forKey: partition) {
                    state.retired.add(previous.counters)
                }
                state.engines[partition] = engine
                state.detectors[.subject(partition)] = self.detection == nil ? nil : detector
                state.evictionsCounted[.subject(partition)] = detector?.evictions
                state.dedupEvictionsCounted[partition] = deduplicator?.evictedEarly
                state.cascadeEvictionsCounted[partition] = engine?.cascadesForgotten
                state.announced.removeValue(forKey: partition)
                state.processed[partition] = offset
            }
        }
        return summary
    }
}
