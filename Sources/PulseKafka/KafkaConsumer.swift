import CRdKafka
import Logging
import Synchronization

/// A consumer-group member that reads in batches on its own thread.
///
/// - `batches` hands whole ``ConsumerBatch``es to the caller. The caller's pace drives polling: the
///   dedicated thread polls only while a `next()` is waiting, and librdkafka's own queue does the
///   buffering (bounded by `queued.max.messages.kbytes`), so no Swift-side buffer grows.
/// - Rebalance hooks run *synchronously inside* librdkafka's rebalance callback, on the consumer thread,
///   between two batches: a revoke hook can flush state and ``commit(_:)`` before the partitions move.
/// - ``close()`` runs the revoke hook for the final assignment, commits (automatic mode), and leaves the
///   group at once, so the partitions move to other members without waiting for a session timeout.
///
/// `@unchecked Sendable`: the `rd_kafka_t` handle is thread-safe and never reassigned; mutable state is
/// behind `Mutex`es or atomics.
public final class KafkaConsumer: @unchecked Sendable {
    /// How offsets reach the group coordinator.
    public enum CommitMode: Sendable, Equatable {
        /// The application calls ``commit(_:)`` (or commits from a rebalance hook).
        case manual
        /// A processed batch's offsets are stored when the next batch is requested and committed in the
        /// background every `interval` (at-least-once: nothing is committed before it was processed).
        case automatic(interval: Duration)
    }

    /// Consumer settings; anything not typed here goes through `client.librdkafka`.
    public struct Configuration: Sendable {
        public var client: KafkaClientConfiguration
        public var groupID: String
        public var topics: [String]
        /// Where a group without a committed offset starts: `earliest` (default) or `latest`.
        public var autoOffsetReset: String
        public var commitMode: CommitMode
        /// `partition.assignment.strategy`; `cooperative-sticky` keeps unaffected partitions in place.
        public var assignmentStrategy: String
        public var sessionTimeout: Duration
        /// Most messages handed over in one batch.
        public var maxBatchSize: Int
        /// How long one poll waits for the first message of a batch before polling again.
        public var pollTimeout: Duration
        /// Raises librdkafka's prefetch thresholds. librdkafka 2.0.2 stalls for `fetch.queue.backoff`
        /// (1 s) whenever its queue reaches `queued.min.messages` (default 100 000), which caps
        /// throughput at a fraction of what the client can do.
        public var highThroughputPrefetch: Bool
        /// Copies each message's headers into the batch. An application that never reads them turns this
        /// off: librdkafka 2.0.2 parses headers on request, and for a message without any (a v2 record's
        /// count of zero) still allocates and frees a parse buffer, two allocations per message.
        public var copiesHeaders: Bool

        public init(
            client: KafkaClientConfiguration,
            groupID: String,
            topics: [String],
            autoOffsetReset: String = "earliest",
            commitMode: CommitMode = .manual,
            assignmentStrategy: String = "cooperative-sticky",
            sessionTimeout: Duration = .seconds(45),
            maxBatchSize: Int = 4096,
            pollTimeout: Duration = .milliseconds(100),
            highThroughputPrefetch: Bool = true,
            copiesHeaders: Bool = true
        ) {
            self.client = client
            self.groupID = groupID
            self.topics = topics
            self.autoOffsetReset = autoOffsetReset
            self.commitMode = commitMode
            self.assignmentStrategy = assignmentStrategy
            self.sessionTimeout = sessionTimeout
            self.maxBatchSize = maxBatchSize
            self.pollTimeout = pollTimeout
            self.highThroughputPrefetch = highThroughputPrefetch
            self.copiesHeaders = copiesHeaders
        }

        var properties: [(String, String)] {
            var typed: [(String, String)] = [
                ("group.id", self.groupID),
                ("auto.offset.reset", self.autoOffsetReset),
                ("partition.assignment.strategy", self.assignmentStrategy),
                ("session.timeout.ms", String(self.sessionTimeout.milliseconds)),
                ("enable.partition.eof", "false"),
                // Offsets are only ever stored explicitly, after the batch was processed.
                ("enable.auto.offset.store", "false"),
            ]
            switch self.commitMode {
            case .manual:
                typed.append(("enable.auto.commit", "false"))
            case .automatic(let interval):
                typed.append(("enable.auto.commit", "true"))
                typed.append(("auto.commit.interval.ms", String(interval.milliseconds)))
            }
            if self.highThroughputPrefetch {
                typed.append(("queued.min.messages", "1000000"))
                typed.append(("queued.max.messages.kbytes", "262144"))
            }
            // The client's list goes last, so pass-through keys override ours.
            var client = self.client.properties
            let passThrough = client.filter { key, _ in self.client.librdkafka[key] != nil }
            client.removeAll { key, _ in self.client.librdkafka[key] != nil }
            return client + typed + passThrough
        }
    }

    /// What the application does when partitions move. Hooks run on the consumer thread, inside
    /// librdkafka's rebalance callback, and must return within the rebalance budget.
    public struct RebalanceHooks: Sendable {
        /// Partitions were added to this member's assignment (before they are consumed).
        public var assigned: @Sendable (KafkaConsumer, [TopicPartition]) -> Void
        /// Partitions are about to be taken away; flush and commit here.
        public var revoked: @Sendable (KafkaConsumer, [TopicPartition]) -> Void
        /// Partitions were lost (session expired, fenced): another member may own them already, so do
        /// not commit; drop their state.
        public var lost: @Sendable (KafkaConsumer, [TopicPartition]) -> Void
        /// Called after ``assigned``: where to start reading each newly assigned partition. Partitions left
        /// out start from the committed offset (or `auto.offset.reset`). A changelog restore answers with
        /// the offset its state reflects.
        public var positions: @Sendable (KafkaConsumer, [TopicPartition]) -> [TopicPartitionOffset]

        public init(
            assigned: @escaping @Sendable (KafkaConsumer, [TopicPartition]) -> Void = { _, _ in },
            revoked: @escaping @Sendable (KafkaConsumer, [TopicPartition]) -> Void = { _, _ in },
            lost: @escaping @Sendable (KafkaConsumer, [TopicPartition]) -> Void = { _, _ in },
            positions: @escaping @Sendable (KafkaConsumer, [TopicPartition]) -> [TopicPartitionOffset] = { _, _ in
                []
            }
        ) {
            self.assigned = assigned
            self.revoked = revoked
            self.lost = lost
            self.positions = positions
        }
    }

    public let configuration: Configuration
    let handle: OpaquePointer
    private let queue: OpaquePointer
    private let thread: ClientThread
    private let callbacks: ClientCallbacks
    private let hooks: RebalanceHooks
    private let logger: Logger
    private let state = Mutex(State())
    private let closing = Atomic<Bool>(false)
    private let messageBuffer: UnsafeMutablePointer<UnsafeMutablePointer<rd_kafka_message_t>?>

    private struct State {
        var assignment: Set<TopicPartition> = []
        var subscribed = false
        var closed = false
        var pendingStore: [TopicPartitionOffset] = []
        var rebalances = 0
    }

    /// Creates the consumer; nothing is fetched until ``subscribe()``.
    ///
    /// - Throws: ``KafkaError/invalidSetting(key:reason:)`` naming the first rejected property.
    public init(
        configuration: Configuration,
        hooks: RebalanceHooks = RebalanceHooks(),
        statistics: (@Sendable (KafkaStatistics) -> Void)? = nil,
        logger: Logger
    ) throws(KafkaError) {
        var logger = logger
        logger[metadataKey: "kafka.group.id"] = "\(configuration.groupID)"
        self.configuration = configuration
        self.hooks = hooks
        self.logger = logger

        var conf = ConfBuilder()
        try conf.set(configuration.properties)
        let callbacks = ClientCallbacks(logger: logger, statistics: statistics)
        callbacks.install(on: conf.pointer!)
        rd_kafka_conf_set_rebalance_cb(conf.pointer, kafkaConsumerRebalanceCallback)
        self.callbacks = callbacks
        self.handle = try conf.makeClient(type: RD_KAFKA_CONSUMER)
        // Route the main queue (errors, statistics, logs) through the consumer queue we poll.
        rd_kafka_poll_set_consumer(self.handle)
        self.queue = rd_kafka_queue_get_consumer(self.handle)
        self.messageBuffer = .allocate(capacity: max(1, configuration.maxBatchSize))
        self.thread = ClientThread(name: "crowdpulse.consumer")
        callbacks.consumer = self
    }

    deinit {
        self.thread.stop()
        if !self.state.withLock({ $0.closed }) {
            // Without close() the hooks' owner may be gone: leave without running callbacks.
            rd_kafka_queue_destroy(self.queue)
            rd_kafka_destroy_flags(self.handle, Int32(RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE))
        } else {
            rd_kafka_queue_destroy(self.queue)
            rd_kafka_destroy(self.handle)
        }
        self.messageBuffer.deallocate()
    }

    /// Joins the group and subscribes to the configured topics.
    public func subscribe() throws(KafkaError) {
        let list = PartitionList(self.configuration.topics.map { TopicPartition($0, RD_KAFKA_PARTITION_UA) })
        let result = rd_kafka_subscribe(self.handle, list.pointer)
        guard result == RD_KAFKA_RESP_ERR_NO_ERROR else { throw .code(result) }
        self.state.withLock { $0.subscribed = true }
        self.logger.info("Subscribed", metadata: ["kafka.topics": "\(self.configuration.topics)"])
    }

    /// The partitions currently assigned to this member.
    public var assignment: [TopicPartition] {
        self.state.withLock { $0.assignment }.sorted()
    }

    /// How many rebalance callbacks (assign or revoke) this member has served.
    public var rebalanceCount: Int { self.state.withLock { $0.rebalances } }

    /// The batches, in order; ends after ``close()`` or when the iterating task is cancelled.
    public var batches: Batches { Batches(consumer: self, maxWait: nil) }

    /// The batches, with an empty one whenever nothing arrived for `maxWait` (a tick for timers).
    public func batches(maxWait: Duration) -> Batches { Batches(consumer: self, maxWait: maxWait) }

    /// An `AsyncSequence` of batches (empty only as ticks, when `maxWait` is set).
    public struct Batches: AsyncSequence, Sendable {
        public typealias Element = ConsumerBatch
        let consumer: KafkaConsumer
        let maxWait: Duration?

        public func makeAsyncIterator() -> Iterator { Iterator(consumer: self.consumer, maxWait: self.maxWait) }

        public struct Iterator: AsyncIteratorProtocol {
            let consumer: KafkaConsumer
            let maxWait: Duration?
            public mutating func next() async throws -> ConsumerBatch? {
                try await self.consumer.nextBatch(maxWait: self.maxWait)
            }
        }
    }

    /// Waits for the next non-empty batch; `nil` once the consumer is closing or the task is cancelled.
    ///
    /// - Throws: a fatal ``KafkaError`` (the consumer cannot go on).
    ///
    /// - Parameter maxWait: return an empty batch when nothing arrived for this long (so that the caller
    ///   can run timers such as idle window close); `nil` waits for messages.
    public func nextBatch(maxWait: Duration? = nil) async throws(KafkaError) -> ConsumerBatch? {
        let cancelled = CancellationFlag()
        let result: Result<ConsumerBatch?, KafkaError>? = await withTaskCancellationHandler {
            await self.thread.run { self.pollBatch(cancelled: cancelled, maxWait: maxWait) }
        } onCancel: {
            cancelled.set()
            rd_kafka_queue_yield(self.queue)
        }
        guard let result else { return nil }  // the thread was stopped
        return try result.get()
    }

    /// Runs on the consumer thread: stores the previous batch's offsets, then polls until a batch arrives.
    private func pollBatch(cancelled: CancellationFlag, maxWait: Duration?) -> Result<ConsumerBatch?, KafkaError> {
        self.storePendingOffsets()
        let timeout = self.configuration.pollTimeout.timeoutMilliseconds
        let deadline = maxWait.map { ContinuousClock.now + $0 }
        while !self.closing.load(ordering: .relaxed) && !cancelled.isSet {
            if let deadline, ContinuousClock.now >= deadline { return .success(ConsumerBatch()) }
            let count = rd_kafka_consume_batch_queue(
                self.queue,
                timeout,
                self.messageBuffer,
                self.configuration.maxBatchSize
            )
            if count < 0 {
                return .failure(.code(rd_kafka_last_error()))
            }
            guard count > 0 else { continue }
            let (batch, errors) = ConsumerBatch.copying(
                self.messageBuffer,
                count: count,
                headers: self.configuration.copiesHeaders
            )
            for error in errors {
                if let fatal = self.fatalError() { return .failure(fatal) }
                self.logger.warning("Consumer error", metadata: ["kafka.error": "\(error)"])
            }
            guard !batch.isEmpty else { continue }
            if case .automatic = self.configuration.commitMode {
                let offsets = batch.nextOffsets
                self.state.withLock { $0.pendingStore = offsets }
            }
            return .success(batch)
        }
        return .success(nil)
    }

    /// The client's fatal error, if it has one (the instance must then be recreated).
    private func fatalError() -> KafkaError? {
        var text = [CChar](repeating: 0, count: 512)
        let code = rd_kafka_fatal_error(self.handle, &text, text.count)
        guard code != RD_KAFKA_RESP_ERR_NO_ERROR else { return nil }
        var detail = KafkaError.Detail(code, text: String(nulTerminated: text))
        detail.isFatal = true
        return .librdkafka(detail)
    }

    private func storePendingOffsets() {
        let pending = self.state.withLock { state in
            defer { state.pendingStore = [] }
            return state.pendingStore
        }
        guard !pending.isEmpty else { return }
        // Partitions revoked meanwhile are rejected with _STATE, which is what we want.
        let list = PartitionList(pending)
        _ = rd_kafka_offsets_store(self.handle, list.pointer)
    }

    /// Stores offsets for the automatic committer (the next offset to read per partition).
    public func storeOffsets(_ offsets: [TopicPartitionOffset]) throws(KafkaError) {
        let list = PartitionList(offsets)
        let result = rd_kafka_offsets_store(self.handle, list.pointer)
        guard result == RD_KAFKA_RESP_ERR_NO_ERROR else { throw list.firstError ?? .code(result) }
    }

    /// Commits `offsets` (the next offset to read per partition) and waits for the coordinator.
    ///
    /// - Important: blocks the calling thread; call it from a rebalance hook or a non-cooperative thread,
    ///   or use ``commit(_:)-async``.
    public func commitSync(_ offsets: [TopicPartitionOffset]) throws(KafkaError) {
        guard !offsets.isEmpty else { return }
        let list = PartitionList(offsets)
        let result = rd_kafka_commit(self.handle, list.pointer, 0)
        if result != RD_KAFKA_RESP_ERR_NO_ERROR { throw .code(result) }
        if let error = list.firstError { throw error }
    }

    /// Commits the offsets stored so far (automatic mode) and waits for the coordinator.
    public func commitStoredSync() throws(KafkaError) {
        let result = rd_kafka_commit(self.handle, nil, 0)
        // _NO_OFFSET: nothing was stored since the last commit.
        guard result == RD_KAFKA_RESP_ERR_NO_ERROR || result == RD_KAFKA_RESP_ERR__NO_OFFSET else {
            throw .code(result)
        }
    }

    /// Commits `offsets` without blocking the cooperative pool.
    public func commit(_ offsets: [TopicPartitionOffset]) async throws(KafkaError) {
        let result = await offloadBlocking { () -> Result<Void, KafkaError> in
            do throws(KafkaError) {
                try self.commitSync(offsets)
                return .success(())
            } catch {
                return .failure(error)
            }
        }
        try result.get()
    }

    /// The committed offsets of `partitions` as the coordinator has them (`-1001`: none).
    public func committed(_ partitions: [TopicPartition], timeout: Duration = .seconds(10)) throws(KafkaError)
        -> [TopicPartitionOffset]
    {
        let list = PartitionList(partitions)
        let result = rd_kafka_committed(self.handle, list.pointer, timeout.timeoutMilliseconds)
        guard result == RD_KAFKA_RESP_ERR_NO_ERROR else { throw .code(result) }
        return list.offsets
    }

    /// The low and high watermarks of a partition, asked from its leader.
    public func watermarks(_ partition: TopicPartition, timeout: Duration = .seconds(10)) throws(KafkaError) -> (
        low: Int64, high: Int64
    ) {
        try queryWatermarks(self.handle, partition, timeout: timeout)
    }

    /// Moves the fetch position of assigned partitions: messages already fetched for them are dropped.
    /// Blocking; call it between batches (the pipeline's task) or from a rebalance hook.
    public func seek(_ offsets: [TopicPartitionOffset], timeout: Duration = .seconds(10)) throws(KafkaError) {
        guard !offsets.isEmpty else { return }
        let list = PartitionList(offsets)
        if let error = rd_kafka_seek_partitions(self.handle, list.pointer, timeout.timeoutMilliseconds) {
            throw KafkaError.consuming(error)
        }
        if let error = list.firstError { throw error }
    }

    /// Stops fetching `partitions` (they stay assigned). Messages already fetched are discarded.
    public func pause(_ partitions: [TopicPartition]) throws(KafkaError) {
        let list = PartitionList(partitions)
        let result = rd_kafka_pause_partitions(self.handle, list.pointer)
        guard result == RD_KAFKA_RESP_ERR_NO_ERROR else { throw .code(result) }
        if let error = list.firstError { throw error }
    }

    /// Resumes fetching `partitions` from the last consumed position.
    public func resume(_ partitions: [TopicPartition]) throws(KafkaError) {
        let list = PartitionList(partitions)
        let result = rd_kafka_resume_partitions(self.handle, list.pointer)
        guard result == RD_KAFKA_RESP_ERR_NO_ERROR else { throw .code(result) }
        if let error = list.firstError { throw error }
    }

    /// The consumer-group metadata that ``KafkaProducer/sendOffsetsToTransaction(_:groupMetadata:timeout:)``
    /// needs.
    public func groupMetadata() -> ConsumerGroupMetadata {
        ConsumerGroupMetadata(pointer: rd_kafka_consumer_group_metadata(self.handle))
    }

    /// Leaves the group: runs the revoke hook for the current assignment (which may commit), commits stored
    /// offsets in automatic mode, and returns once the member has left. Pending `next()` calls return `nil`.
    public func close() async {
        guard !self.closing.exchange(true, ordering: .relaxed) else { return }
        rd_kafka_queue_yield(self.queue)
        _ = await self.thread.run {
            self.storePendingOffsets()
            let result = rd_kafka_consumer_close(self.handle)
            if result != RD_KAFKA_RESP_ERR_NO_ERROR {
                self.logger.warning("Consumer close failed", metadata: ["kafka.error": "\(KafkaError.code(result))"])
            }
            self.state.withLock { $0.closed = true }
        }
        self.logger.info("Consumer closed")
    }

    // MARK: - Rebalance

    fileprivate func rebalance(
        _ error: rd_kafka_resp_err_t,
        _ list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>
    ) {
        let partitions = PartitionList.partitions(of: list)
        let cooperative = String(cString: rd_kafka_rebalance_protocol(self.handle)) == "COOPERATIVE"
        self.state.withLock { $0.rebalances += 1 }
        switch error {
        case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
            self.logger.info("Partitions assigned", metadata: ["kafka.partitions": "\(partitions)"])
            self.hooks.assigned(self, partitions)
            for position in self.hooks.positions(self, partitions) {
                guard
                    let element = rd_kafka_topic_partition_list_find(
                        list,
                        position.topicPartition.topic,
                        position.topicPartition.partition
                    )
                else { continue }
                element.pointee.offset = position.offset
            }
            self.state.withLock { $0.assignment.formUnion(partitions) }
            if cooperative {
                if let error = rd_kafka_incremental_assign(self.handle, list) {
                    self.logger.error(
                        "Incremental assign failed",
                        metadata: ["kafka.error": "\(KafkaError.consuming(error))"]
                    )
                }
            } else {
                let result = rd_kafka_assign(self.handle, list)
                if result != RD_KAFKA_RESP_ERR_NO_ERROR {
                    self.logger.error("Assign failed", metadata: ["kafka.error": "\(KafkaError.code(result))"])
                }
            }
        case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS:
            if rd_kafka_assignment_lost(self.handle) != 0 {
                self.logger.warning("Partitions lost", metadata: ["kafka.partitions": "\(partitions)"])
                self.state.withLock { $0.pendingStore = [] }
                self.hooks.lost(self, partitions)
            } else {
                self.logger.info("Partitions revoked", metadata: ["kafka.partitions": "\(partitions)"])
                self.hooks.revoked(self, partitions)
                if case .automatic = self.configuration.commitMode {
                    self.storePendingOffsets()
                    do throws(KafkaError) {
                        try self.commitStoredSync()
                    } catch {
                        self.logger.warning("Commit on revoke failed", metadata: ["kafka.error": "\(error)"])
                    }
                }
            }
            self.state.withLock { $0.assignment.subtract(partitions) }
            if cooperative {
                if let error = rd_kafka_incremental_unassign(self.handle, list) {
                    self.logger.error(
                        "Incremental unassign failed",
                        metadata: ["kafka.error": "\(KafkaError.consuming(error))"]
                    )
                }
            } else {
                _ = rd_kafka_assign(self.handle, nil)
            }
        default:
            self.logger.error("Rebalance error", metadata: ["kafka.error": "\(KafkaError.code(error))"])
            _ = rd_kafka_assign(self.handle, nil)
            self.state.withLock { $0.assignment = [] }
        }
    }
}

/// `rd_kafka_consumer_group_metadata_t`, owned; needed to send offsets in a transaction.
/// `@unchecked Sendable`: immutable after creation.
public final class ConsumerGroupMetadata: @unchecked Sendable {
    let pointer: OpaquePointer

    init(pointer: OpaquePointer) {
        self.pointer = pointer
    }

    deinit { rd_kafka_consumer_group_metadata_destroy(self.pointer) }
}

/// A one-way flag set from a task-cancellation handler and read by the consumer thread.
final class CancellationFlag: Sendable {
    private let flag = Atomic<Bool>(false)
    func set() { self.flag.store(true, ordering: .relaxed) }
    var isSet: Bool { self.flag.load(ordering: .relaxed) }
}

/// A flag that starts set and is cleared once, to stop a loop on another thread.
final class RunFlag: Sendable {
    private let flag = Atomic<Bool>(true)
    func clear() { self.flag.store(false, ordering: .relaxed) }
    var isSet: Bool { self.flag.load(ordering: .relaxed) }
}

private func kafkaConsumerRebalanceCallback(
    handle: OpaquePointer?,
    error: rd_kafka_resp_err_t,
    list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?,
    opaque: UnsafeMutableRawPointer?
) {
    guard let opaque, let list else { return }
    let callbacks = Unmanaged<ClientCallbacks>.fromOpaque(opaque).takeUnretainedValue()
    guard let consumer = callbacks.consumer else {
        // The consumer is being destroyed: hand the partitions back without hooks.
        _ = rd_kafka_assign(handle, nil)
        return
    }
    consumer.rebalance(error, list)
}
