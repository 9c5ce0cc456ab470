import CoreMetrics
import Dispatch
import Logging
import PulseCore
import PulseKafka
import ServiceLifecycle
import Synchronization

/// Running totals of what the consumer has handed over, read by reporters and (later) `/metrics`.
public final class ConsumptionStats: Sendable {
    public struct Snapshot: Sendable, Equatable {
        public var messages = 0
        public var bytes = 0
        public var batches = 0
        public var accepted = 0
        public var deadLettered = 0
        public var duplicates = 0
        public var acceptedByType: [String: Int] = [:]
        /// The most recent accepted event, for display.
        public var lastEvent: Event?
        public var metricsRecords = 0
        public var lateRecords = 0
        /// Consumer lag per input partition, from librdkafka statistics.
        public var consumerLag: [TopicPartition: Int64] = [:]
        public var assignment: [TopicPartition] = []
        /// Partitions being restored from the changelog now.
        public var restoring = 0
        /// The offsets this process last committed (in a transaction under `exactly_once`) per partition.
        public var committed: [TopicPartition: Int64] = [:]
    }

    private let state = Mutex(Snapshot())

    public init() {}

    public var current: Snapshot { self.state.withLock { $0 } }

    public func update(_ body: (inout Snapshot) -> Void) {
        self.state.withLock { body(&$0) }
    }
}

/// `processing.guarantee`.
public enum ProcessingGuarantee: String, Sendable, CaseIterable {
    /// Outputs are delivered before the offsets they cover are committed; after a failure some are sent
    /// again, as identical upserts (records are keyed and revisioned).
    case atLeastOnce = "at_least_once"
    /// Outputs, changelog checkpoints and offsets commit in one Kafka transaction; consumers of the
    /// outputs read with `isolation.level=read_committed`.
    case exactlyOnce = "exactly_once"
}

/// What the rebalance hooks and the pipeline task share about commits.
///
/// - Under `exactly_once`: a transaction was aborted (or partitions were lost), so the state of the
///   partitions still assigned is ahead of what committed and must be restored from the changelog before
///   anything else is processed.
/// - Under `at_least_once`: the commit in flight (see ``InFlightCommit``); partitions that move leave it,
///   because the revoke hook commits them itself and a lost partition must not be committed at all.
public final class CommitCoordination: Sendable {
    let needsRecovery = Atomic<Bool>(false)
    let inFlight = Mutex<InFlightCommit?>(nil)

    public init() {}

    /// Takes partitions that moved out of the commit in flight.
    func forget(_ partitions: [TopicPartition]) {
        self.inFlight.withLock { commit in
            commit?.pending.removeAll { partitions.contains($0.source) }
            commit?.offsets.removeAll { partitions.contains($0.topicPartition) }
        }
    }
}

/// Checkpoints encoded on a thread of their own, from the state the pipeline captured
/// (``IngestPipeline/capture(_:)``), while the pipeline goes on processing.
final class CheckpointEncoding: Sendable {
    struct Encoded: Sendable {
        var snapshots: [Changelog.Snapshot]
        var duration: Duration
    }

    private let result = Mutex<Encoded?>(nil)
    private let group = DispatchGroup()

    init(_ captures: [IngestPipeline.StateCapture]) {
        self.group.enter()
        DispatchQueue.global(qos: .userInitiated).async { [self] in
            let clock = ContinuousClock()
            let started = clock.now
            let snapshots = captures.map { $0.encoded() }
            self.result.withLock { $0 = Encoded(snapshots: snapshots, duration: clock.now - started) }
            self.group.leave()
        }
    }

    /// The checkpoints, once encoded.
    var finished: Encoded? { self.result.withLock { $0 } }

    /// Waits for the encoding to finish.
    func wait() async -> Encoded {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            self.group.notify(queue: .global()) { continuation.resume() }
        }
        return self.finished!
    }
}

/// An `at_least_once` commit whose deliveries are awaited while the next batches are processed.
///
/// A commit has four steps, each waiting for the one before: the changed partitions' state is captured
/// (copies of values, nearly free) and encoded on another thread; the checkpoint chunks are queued and
/// delivered (with every output produced before them); then the markers confirming the checkpoints;
/// then the offsets. Kafka Streams flushes in place, stopping processing for as long as the deliveries take
/// (with 10 ms to the broker, 2 s of a 15 s benchmark run; docs/performance.md). Here the steps wait on the producer's delivery epochs
/// instead of a flush: the pipeline keeps processing, its new outputs go into a later epoch, and the
/// commit moves on as soon as its own epoch is delivered. What is committed is unchanged: the offsets
/// of the state the checkpoints hold, once everything that state produced is delivered.
struct InFlightCommit: Sendable {
    enum Stage: Sendable {
        /// The checkpoints are being encoded on another thread.
        case encoding(CheckpointEncoding)
        /// Waiting for the checkpoint chunks and every output sent before them.
        case chunks
        /// Waiting for the markers.
        case markers
    }

    var stage: Stage
    /// The producer's delivery epoch the current stage waits for.
    var epoch: UInt64
    var pending: [Changelog.Pending]
    var offsets: [TopicPartitionOffset]
    /// When the current stage began: each stage may wait up to ``PipelineService/deliveryTimeout``, as each
    /// flush could.
    var started: ContinuousClock.Instant
}

/// An output could not be delivered, so the offsets it covers were not committed.
public struct UndeliveredOutputs: Error, CustomStringConvertible {
    public var failed: Int
    /// The records were still awaiting delivery after ``PipelineService/deliveryTimeout``.
    public var timedOut = false

    public var description: String {
        self.timedOut
            ? "\(self.failed) records still undelivered after \(PipelineService.deliveryTimeout); offsets not committed"
            : "\(self.failed) output records were not delivered; offsets not committed"
    }
}

/// The daemon's main loop: consume batches, ingest them, and commit offsets only after everything a
/// batch produced (dead letters, later metrics and alerts) has been delivered — at-least-once.
///
/// Offsets are committed every `commitInterval`, in the revoke hook (after a flush) before partitions
/// move, and at shutdown. A delivery failure stops the service without committing: the next owner
/// re-reads from the last commit.
public struct PipelineService: Service {
    let consumer: KafkaConsumer
    let producer: KafkaProducer
    let pipeline: IngestPipeline
    let changelog: Changelog?
    let stats: ConsumptionStats
    let commitInterval: Duration
    let guarantee: ProcessingGuarantee
    let coordination: CommitCoordination
    let logger: Logger

    /// - Parameter coordination: shared with ``rebalanceHooks(pipeline:producer:changelog:stats:guarantee:coordination:budget:logger:)``.
    public init(
        consumer: KafkaConsumer,
        producer: KafkaProducer,
        pipeline: IngestPipeline,
        changelog: Changelog? = nil,
        stats: ConsumptionStats,
        commitInterval: Duration = .seconds(1),
        guarantee: ProcessingGuarantee = .atLeastOnce,
        coordination: CommitCoordination = CommitCoordination(),
        logger: Logger
    ) {
        self.consumer = consumer
        self.producer = producer
        self.pipeline = pipeline
        self.guarantee = guarantee
        self.coordination = coordination
        self.changelog = changelog
        self.stats = stats
        self.commitInterval = commitInterval
        self.logger = logger
    }

    /// Rebalance hooks:
    /// - **revoked**: checkpoint the partitions that move, flush, confirm, commit — all inside the
    ///   rebalance callback and within `budget`, so that the next owner continues exactly where this
    ///   member stopped;
    /// - **lost**: drop the partitions' state without committing (another member may own them already);
    /// - **positions**: restore each newly assigned partition from its latest confirmed checkpoint before
    ///   it is consumed, and start reading at the offset that checkpoint reflects.
    public static func rebalanceHooks(
        pipeline: IngestPipeline,
        producer: KafkaProducer,
        changelog: Changelog?,
        stats: ConsumptionStats? = nil,
        guarantee: ProcessingGuarantee = .atLeastOnce,
        coordination: CommitCoordination = CommitCoordination(),
        budget: Duration = .seconds(10),
        logger: Logger
    ) -> KafkaConsumer.RebalanceHooks {
        KafkaConsumer.RebalanceHooks(
            revoked: { consumer, partitions in
                if guarantee == .exactlyOnce {
                    Self.commitTransactionOnRevoke(
                        consumer: consumer,
                        partitions: partitions,
                        pipeline: pipeline,
                        producer: producer,
                        changelog: changelog,
                        coordination: coordination,
                        budget: budget,
                        logger: logger
                    )
                    pipeline.drop(partitions)
                    changelog?.forget(partitions)
                    return
                }
                // This hook commits the partitions itself, from a fresh checkpoint.
                coordination.forget(partitions)
                let clock = ContinuousClock()
                let started = clock.now
                do throws(KafkaError) {
                    let (snapshots, offsets) = pipeline.checkpoint(partitions)
                    let pending = try changelog?.write(snapshots) ?? []
                    try producer.flushSync(timeout: budget)
                    guard producer.failedDeliveries == 0 else {
                        logger.error("Outputs undelivered; not committing revoked partitions")
                        pipeline.drop(partitions)
                        return
                    }
                    try changelog?.confirm(pending)
                    // The markers too: the next owner restores from them.
                    try producer.flushSync(timeout: max(.seconds(1), budget - (clock.now - started)))
                    pipeline.metrics.checkpoints.increment(by: snapshots.count)
                    var committed = "committed"
                    do throws(KafkaError) {
                        try consumer.commitSync(offsets)
                    } catch {
                        // The checkpoints are confirmed, so the next owner resumes from them all the same.
                        committed =
                            "not committed (\(error.detail?.name ?? "\(error)")); the next owner resumes from the changelog"
                    }
                    logger.info(
                        "Revoked partitions checkpointed",
                        metadata: [
                            "kafka.partitions": "\(partitions)", "checkpoints": "\(snapshots.count)",
                            "offsets": "\(committed)", "duration_ms": "\((clock.now - started).wholeMilliseconds)",
                        ]
                    )
                } catch {
                    logger.error("Commit on revoke failed", metadata: ["kafka.error": "\(error)"])
                }
                pipeline.drop(partitions)
                changelog?.forget(partitions)
            },
            lost: { _, partitions in
                coordination.forget(partitions)
                pipeline.drop(partitions)
                changelog?.forget(partitions)
                // The open transaction holds the lost partitions' outputs: it must not commit.
                if guarantee == .exactlyOnce { coordination.needsRecovery.store(true, ordering: .relaxed) }
            },
            positions: { _, partitions in
                guard let changelog else { return [] }
                return Self.restore(partitions, from: changelog, into: pipeline, stats: stats, logger: logger)
            }
        )
    }

    /// `exactly_once` revoke: commit the open transaction (outputs, checkpoints of every partition, and
    /// their offsets) before the partitions move; when that fails, abort it and have the pipeline task
    /// restore the partitions it keeps.
    static func commitTransactionOnRevoke(
        consumer: KafkaConsumer,
        partitions: [TopicPartition],
        pipeline: IngestPipeline,
        producer: KafkaProducer,
        changelog: Changelog?,
        coordination: CommitCoordination,
        budget: Duration,
        logger: Logger
    ) {
        let clock = ContinuousClock()
        let started = clock.now
        do throws(KafkaError) {
            let (snapshots, offsets) = pipeline.checkpoint()
            let pending = try changelog?.write(snapshots) ?? []
            try changelog?.confirm(pending)
            try producer.commitTransactionSync(
                offsets: offsets,
                groupMetadata: consumer.groupMetadata(),
                timeout: budget
            )
            pipeline.metrics.checkpoints.increment(by: snapshots.count)
            logger.info(
                "Revoked partitions checkpointed",
                metadata: [
                    "kafka.partitions": "\(partitions)", "checkpoints": "\(snapshots.count)",
                    "duration_ms": "\((clock.now - started).wholeMilliseconds)",
                    "offsets": "committed in the transaction",
                ]
            )
        } catch {
            logger.error("Transaction commit on revoke failed; aborting", metadata: ["kafka.error": "\(error)"])
            do throws(KafkaError) {
                try producer.abortTransactionSync(timeout: budget)
            } catch {
                logger.error("Transaction abort failed", metadata: ["kafka.error": "\(error)"])
            }
            coordination.needsRecovery.store(true, ordering: .relaxed)
        }
        do throws(KafkaError) {
            try producer.beginTransaction()
        } catch {
            logger.error("Cannot begin a transaction", metadata: ["kafka.error": "\(error)"])
            coordination.needsRecovery.store(true, ordering: .relaxed)
        }
    }

    /// Restores each partition from its latest confirmed checkpoint; returns where to start reading them.
    /// A partition without a usable checkpoint starts empty, from the group's committed offset.
    static func restore(
        _ partitions: [TopicPartition],
        from changelog: Changelog,
        into pipeline: IngestPipeline,
        stats: ConsumptionStats?,
        logger: Logger
    ) -> [TopicPartitionOffset] {
        let clock = ContinuousClock()
        var remaining = partitions.count
        stats?.update { $0.restoring += remaining }
        pipeline.metrics.restoring.record(remaining)
        defer {
            stats?.update { $0.restoring -= remaining }
            pipeline.metrics.restoring.record(0)
        }
        var positions: [TopicPartitionOffset] = []
        for partition in partitions {
            let started = clock.now
            defer {
                remaining -= 1
                stats?.update { $0.restoring -= 1 }
                pipeline.metrics.restoring.record(remaining)
            }
            do {
                guard let restored = try changelog.restore(partition) else {
                    pipeline.metrics.restoresEmpty.increment()
                    logger.info(
                        "No checkpoint in the changelog; starting empty from the committed offset",
                        metadata: ["kafka.partition": "\(partition)"]
                    )
                    continue
                }
                let summary = try pipeline.install(partition, offset: restored.offset, state: restored.state)
                positions.append(TopicPartitionOffset(partition, offset: restored.offset))
                let duration = clock.now - started
                pipeline.metrics.restores.increment()
                pipeline.metrics.restoreDuration.recordNanoseconds(duration.nanoseconds)
                logger.info(
                    "Restored from the changelog",
                    metadata: [
                        "kafka.partition": "\(partition)", "kafka.offset": "\(restored.offset)",
                        "state": "\(summary)", "state_bytes": "\(restored.state.count)",
                        "changelog_records": "\(restored.recordsRead)", "duration_ms": "\(duration.wholeMilliseconds)",
                    ]
                )
            } catch {
                pipeline.metrics.restoresEmpty.increment()
                pipeline.drop([partition])
                logger.error(
                    "Changelog restore failed; starting empty from the committed offset",
                    metadata: ["kafka.partition": "\(partition)", "error": "\(error)"]
                )
            }
        }
        return positions
    }

    public func run() async throws {
        if self.guarantee == .exactlyOnce {
            try await self.producer.initTransactions()
            try self.producer.beginTransaction()
        }
        try self.consumer.subscribe()
        do {
            let clock = ContinuousClock()
            var lastCommit = clock.now
            var rebalances = 0
            var failures = 0
            for try await batch in self.consumer.batches(maxWait: .seconds(1)).cancelOnGracefulShutdown() {
                try self.pipeline.tick()
                let newRebalances = self.consumer.rebalanceCount
                self.pipeline.metrics.rebalances.increment(by: newRebalances - rebalances)
                rebalances = newRebalances
                let newFailures = self.producer.failedDeliveries
                self.pipeline.metrics.deliveryFailures.increment(by: newFailures - failures)
                failures = newFailures
                // Commit on the interval, and on a tick (no input for the poll's second) whenever something
                // changed since the last commit, whatever the interval: a stream that pauses or ends is
                // committed promptly (its lag reads 0, its outputs are visible to `read_committed` readers)
                // even with a long interval, and an idle one commits nothing.
                let due = clock.now - lastCommit >= self.commitInterval
                let idleWithChanges = batch.isEmpty && self.pipeline.hasUncommittedChanges
                if self.guarantee == .exactlyOnce {
                    if due || idleWithChanges {
                        try await self.commitTransaction()
                        lastCommit = clock.now
                    }
                } else {
                    // On a tick (no input for the poll's second) the commit may wait a little for its
                    // deliveries, so that a finished stream is committed promptly; but only a little: input
                    // that arrives meanwhile must not wait for a broker that does not answer.
                    try await self.advanceCommit(waiting: batch.isEmpty ? Self.tickWait : nil)
                    if due || idleWithChanges, self.coordination.inFlight.withLock({ $0 == nil }) {
                        self.startCommit()
                        lastCommit = clock.now
                        if batch.isEmpty { try await self.advanceCommit(waiting: Self.tickWait) }
                    }
                }
                if self.coordination.needsRecovery.exchange(false, ordering: .relaxed) {
                    // This batch continues state that was aborted: drop it, restore, and read again.
                    try await self.recover()
                    continue
                }
                guard !batch.isEmpty else { continue }
                try self.pipeline.process(batch)
                let seeks = self.pipeline.takeSeeks()
                if !seeks.isEmpty {
                    do throws(KafkaError) {
                        try self.consumer.seek(seeks)
                    } catch {
                        // The partition moved meanwhile: its next owner restores from the changelog.
                        self.logger.warning("Seek failed", metadata: ["kafka.error": "\(error)"])
                    }
                }
                let counters = self.pipeline.counters
                let outputs = self.pipeline.outputCounts
                let assignment = self.consumer.assignment
                self.stats.update { stats in
                    stats.messages += batch.count
                    stats.bytes += batch.byteCount
                    stats.batches += 1
                    stats.accepted = counters.accepted
                    stats.deadLettered = counters.rejectedTotal
                    stats.duplicates = counters.duplicates
                    stats.metricsRecords = outputs.metrics
                    stats.lateRecords = outputs.late
                    for kind in Event.Kind.allCases {
                        stats.acceptedByType[kind.description] = counters.acceptedByKind[Int(kind.rawValue)]
                    }
                    stats.assignment = assignment
                }
            }
            // A rebalance under way is fine here too: leaving the group runs the revoke hook, which
            // checkpoints and commits what this member still owns.
            try await self.commit(duringRebalanceIsFine: true)
        } catch {
            self.logger.error("Pipeline stopped", metadata: ["error": "\(error)"])
            await self.consumer.close()
            throw error
        }
        await self.consumer.close()
    }

    /// Group-membership errors a periodic commit meets while the group rebalances: the revoke hook
    /// commits what moves, and the next interval commits the rest.
    static let rebalanceErrors: Set<String> = [
        "REBALANCE_IN_PROGRESS", "ILLEGAL_GENERATION", "UNKNOWN_MEMBER_ID", "NOT_COORDINATOR",
        "COORDINATOR_NOT_AVAILABLE", "COORDINATOR_LOAD_IN_PROGRESS", "_WAIT_COORD", "_STATE",
    ]

    /// The error's name when a periodic commit may simply wait for the next interval.
    static func deferrable(_ error: KafkaError) -> String? {
        guard case .librdkafka(let detail) = error else { return nil }
        return detail.isRetriable || Self.rebalanceErrors.contains(detail.name) ? detail.name : nil
    }

    /// Commits everything processed so far and waits for it: finishes the commit in flight, then
    /// checkpoints what changed since, waits until every output and checkpoint chunk is delivered, confirms
    /// the checkpoints, and commits the offsets they reflect.
    private func commit(duringRebalanceIsFine: Bool = false) async throws {
        if self.guarantee == .exactlyOnce {
            try await self.commitTransaction()
            return
        }
        try await self.advanceCommit(waiting: Self.deliveryTimeout, duringRebalanceIsFine: duringRebalanceIsFine)
        self.startCommit()
        try await self.advanceCommit(waiting: Self.deliveryTimeout, duringRebalanceIsFine: duringRebalanceIsFine)
    }

    /// `at_least_once`: captures the state of what changed and the offsets it reflects, and puts the commit
    /// in flight (``InFlightCommit``): the checkpoints are encoded on another thread, and nothing waits for
    /// a delivery.
    private func startCommit() {
        let (captures, offsets) = self.pipeline.capture()
        guard !captures.isEmpty || !offsets.isEmpty else { return }
        let commit = InFlightCommit(
            stage: .encoding(CheckpointEncoding(captures)),
            epoch: 0,
            pending: [],
            offsets: offsets,
            started: ContinuousClock.now
        )
        self.coordination.inFlight.withLock { $0 = commit }
    }

    /// Queues the chunks of the encoded checkpoints of the partitions still in the commit.
    private func writeCheckpoints(_ encoded: CheckpointEncoding.Encoded, of commit: InFlightCommit) throws {
        // Partitions that moved meanwhile left the commit: the revoke hook wrote their checkpoints itself.
        let kept = Set(commit.offsets.map(\.topicPartition))
        let snapshots = encoded.snapshots.filter { kept.contains($0.source) }
        let pending = try self.changelog?.write(snapshots) ?? []
        if !snapshots.isEmpty {
            self.pipeline.metrics.checkpoints.increment(by: snapshots.count)
            self.pipeline.metrics.checkpointBytes.increment(by: pending.reduce(0) { $0 + $1.written })
            self.pipeline.metrics.checkpointDuration.recordNanoseconds(encoded.duration.nanoseconds)
        }
        let epoch = self.producer.closeEpoch()
        self.coordination.inFlight.withLock { inFlight in
            inFlight?.stage = .chunks
            inFlight?.epoch = epoch
            inFlight?.pending = pending
            inFlight?.started = ContinuousClock.now
        }
    }

    /// How long a commit may wait for its deliveries, as `flush` did before commits overlapped processing.
    static let deliveryTimeout: Duration = .seconds(30)

    /// How long a commit waits for its deliveries on a tick. A tick used to wait up to ``deliveryTimeout``:
    /// with an output broker down, input that came meanwhile was not processed for 30 s, and the commit
    /// then stopped the pipeline (a test caught it under load).
    static let tickWait: Duration = .milliseconds(200)

    /// `at_least_once`: moves the commit in flight on as far as its deliveries allow: once the chunks and
    /// outputs are delivered, queues the markers; once the markers are delivered, commits the offsets.
    ///
    /// - Parameter waiting: how long to wait for the deliveries (a flush); `nil` to return at once and check
    ///   again after the next batch. Whatever the wait, a stage still undelivered after ``deliveryTimeout``
    ///   throws.
    /// - Throws: ``UndeliveredOutputs`` when a delivery failed: nothing more is committed, and the next
    ///   owner re-reads from the last commit.
    private func advanceCommit(waiting: Duration?, duringRebalanceIsFine: Bool = true) async throws {
        while let commit = self.coordination.inFlight.withLock({ $0 }) {
            let late = ContinuousClock.now - commit.started >= Self.deliveryTimeout
            if case .encoding(let encoding) = commit.stage {
                if let encoded = encoding.finished {
                    try self.writeCheckpoints(encoded, of: commit)
                } else if waiting != nil || late {
                    // Encoding has no timeout of its own: it always ends, and the pipeline goes on meanwhile.
                    try self.writeCheckpoints(await encoding.wait(), of: commit)
                } else {
                    return
                }
                continue
            }
            if !self.producer.isDelivered(through: commit.epoch) {
                if let waiting {
                    do throws(KafkaError) {
                        try await self.producer.flush(timeout: waiting)
                    } catch {
                        // A tick's short wait that ends first is not an error: checked again after the
                        // next batch or tick (the flush waited for every message; this commit needs only
                        // its epoch's).
                        guard waiting < Self.deliveryTimeout, error.detail?.name == "_TIMED_OUT" else { throw error }
                    }
                }
                if !self.producer.isDelivered(through: commit.epoch) {
                    guard !late else {
                        throw UndeliveredOutputs(failed: self.producer.outstanding, timedOut: true)
                    }
                    return
                }
            }
            let failed = self.producer.failedDeliveries
            guard failed == 0 else { throw UndeliveredOutputs(failed: failed) }
            switch commit.stage {
            case .chunks where !commit.pending.isEmpty:
                // The markers are delivered before the offsets commit, and before the next checkpoint
                // writes into the other slot: a restore always finds the checkpoint the committed
                // offsets match.
                try self.changelog?.confirm(commit.pending)
                let epoch = self.producer.closeEpoch()
                self.coordination.inFlight.withLock { inFlight in
                    inFlight?.stage = .markers
                    inFlight?.epoch = epoch
                    inFlight?.started = ContinuousClock.now
                }
            case .encoding, .chunks, .markers:
                self.coordination.inFlight.withLock { $0 = nil }
                guard !commit.offsets.isEmpty else { continue }
                do throws(KafkaError) {
                    try await self.consumer.commit(commit.offsets)
                    self.stats.update { stats in
                        for offset in commit.offsets { stats.committed[offset.topicPartition] = offset.offset }
                    }
                } catch {
                    guard duringRebalanceIsFine, let name = Self.deferrable(error) else { throw error }
                    self.logger.warning(
                        "Commit deferred: the group is rebalancing",
                        metadata: ["kafka.error": "\(name)"]
                    )
                }
            }
        }
    }

    /// `exactly_once`: checkpoints, their markers and the offsets join the open transaction, which then
    /// commits. A commit that fails (and is not fatal) aborts and restores from the changelog.
    private func commitTransaction() async throws {
        let (snapshots, offsets) = self.pipeline.checkpoint()
        do throws(KafkaError) {
            let pending = try self.changelog?.write(snapshots) ?? []
            try self.changelog?.confirm(pending)
            if !offsets.isEmpty {
                try await self.producer.sendOffsetsToTransaction(offsets, groupMetadata: self.consumer.groupMetadata())
            }
            try await self.producer.commitTransaction()
            self.stats.update { stats in
                for offset in offsets { stats.committed[offset.topicPartition] = offset.offset }
            }
            self.pipeline.metrics.checkpoints.increment(by: snapshots.count)
            self.pipeline.metrics.checkpointBytes.increment(by: pending.reduce(0) { $0 + $1.written })
            try self.producer.beginTransaction()
        } catch {
            if error.detail?.isFatal == true { throw error }  // fenced: another instance owns the work now
            self.logger.warning("Transaction failed; aborting and restoring", metadata: ["kafka.error": "\(error)"])
            try await self.recover()
        }
    }

    /// Aborts the open transaction and puts every assigned partition back to its last committed state:
    /// the changelog's latest committed checkpoint, or the committed offset with empty state.
    private func recover() async throws {
        do throws(KafkaError) {
            try await self.producer.abortTransaction()
        } catch {
            if error.detail?.isFatal == true { throw error }
            self.logger.warning("Abort failed", metadata: ["kafka.error": "\(error)"])
        }
        let assignment = self.consumer.assignment
        self.pipeline.drop(assignment)
        self.changelog?.forget(assignment)
        var positions: [TopicPartitionOffset] = []
        if let changelog = self.changelog {
            positions = Self.restore(
                assignment,
                from: changelog,
                into: self.pipeline,
                stats: self.stats,
                logger: self.logger
            )
        }
        let restored = Set(positions.map(\.topicPartition))
        let others = assignment.filter { !restored.contains($0) }
        if !others.isEmpty {
            for committed in try self.consumer.committed(others) {
                // Nothing committed: the start of the partition (new groups start at the earliest offset).
                positions.append(TopicPartitionOffset(committed.topicPartition, offset: max(committed.offset, -2)))
            }
        }
        try self.consumer.seek(positions)
        try self.producer.beginTransaction()
        self.logger.notice("Restored after an aborted transaction", metadata: ["kafka.partitions": "\(assignment)"])
    }
}
