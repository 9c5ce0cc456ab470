import CRdKafka
import Logging
import Synchronization

/// A record to produce.
public struct ProducerRecord: Sendable {
    public var topic: String
    /// `nil`: the partitioner picks one from the key (librdkafka's default, murmur2-compatible with Java
    /// clients only when `partitioner=murmur2_random` is passed through).
    public var partition: Int32?
    public var key: [UInt8]?
    public var value: [UInt8]?
    public var headers: [KafkaHeader]
    /// Epoch milliseconds; `nil` lets librdkafka stamp the send time.
    public var timestamp: Int64?

    public init(
        topic: String,
        partition: Int32? = nil,
        key: [UInt8]? = nil,
        value: [UInt8]?,
        headers: [KafkaHeader] = [],
        timestamp: Int64? = nil
    ) {
        self.topic = topic
        self.partition = partition
        self.key = key
        self.value = value
        self.headers = headers
        self.timestamp = timestamp
    }

    public init(topic: String, partition: Int32? = nil, key: String?, value: String, headers: [KafkaHeader] = []) {
        self.init(
            topic: topic,
            partition: partition,
            key: key.map { Array($0.utf8) },
            value: Array(value.utf8),
            headers: headers
        )
    }
}

/// The outcome of one produced message, as librdkafka's delivery report tells it.
public struct DeliveryReport: Sendable, Equatable {
    /// The id ``KafkaProducer/send(_:)`` returned for the message.
    public var id: UInt64
    public var topic: String
    public var partition: Int32
    /// The offset the broker assigned; `nil` when delivery failed.
    public var offset: Int64?
    /// Why the message was not written; `nil` on success.
    public var error: KafkaError?

    public var isSuccess: Bool { self.error == nil }
}

/// A producer with delivery reports surfaced as values, idempotence on by default, and the transactional API.
///
/// Delivery reports are served on the producer's own thread and passed to `onDelivery` (or to the task
/// awaiting ``sendAndWait(_:)``); a failed delivery is never silent.
/// `@unchecked Sendable`: `rd_kafka_t` is thread-safe; mutable state is behind `Mutex`es and atomics.
public final class KafkaProducer: @unchecked Sendable {
    /// Producer settings; anything not typed here goes through `client.librdkafka`.
    public struct Configuration: Sendable {
        public var client: KafkaClientConfiguration
        /// `enable.idempotence`: no duplicates or reordering from retries (implies `acks=all`).
        public var idempotence: Bool
        /// `transactional.id`; required for the transactional API.
        public var transactionalID: String?
        /// `transaction.timeout.ms`: the broker aborts a transaction left open longer than this.
        public var transactionTimeout: Duration
        /// `compression.codec`: `none`, `gzip`, `snappy`, `lz4` or `zstd`.
        public var compression: String
        /// Codecs for the topics named, instead of ``compression`` (librdkafka's topic-level
        /// `compression.codec`): a checkpoint changelog that compresses poorly need not cost the CPU.
        public var topicCompression: [String: String]
        /// `linger.ms`: how long to wait to fill a batch.
        public var linger: Duration
        /// `message.timeout.ms`: how long librdkafka retries a message before reporting it failed.
        public var messageTimeout: Duration
        /// How long ``send(_:)`` waits for room when librdkafka's queue is full before throwing.
        public var enqueueTimeout: Duration

        public init(
            client: KafkaClientConfiguration,
            idempotence: Bool = true,
            transactionalID: String? = nil,
            transactionTimeout: Duration = .seconds(60),
            compression: String = "lz4",
            topicCompression: [String: String] = [:],
            linger: Duration = .milliseconds(5),
            messageTimeout: Duration = .seconds(300),
            enqueueTimeout: Duration = .seconds(30)
        ) {
            self.client = client
            self.idempotence = idempotence
            self.transactionalID = transactionalID
            self.transactionTimeout = transactionTimeout
            self.compression = compression
            self.topicCompression = topicCompression
            self.linger = linger
            self.messageTimeout = messageTimeout
            self.enqueueTimeout = enqueueTimeout
        }

        var properties: [(String, String)] {
            var messageTimeout = self.messageTimeout
            var typed: [(String, String)] = [
                ("enable.idempotence", self.idempotence ? "true" : "false"),
                ("compression.codec", self.compression),
                ("linger.ms", String(self.linger.milliseconds)),
            ]
            if let transactionalID = self.transactionalID {
                typed.append(("transactional.id", transactionalID))
                typed.append(("transaction.timeout.ms", String(self.transactionTimeout.milliseconds)))
                // librdkafka requires a message to time out before the transaction that carries it.
                messageTimeout = min(messageTimeout, self.transactionTimeout)
            }
            typed.append(("message.timeout.ms", String(messageTimeout.milliseconds)))
            var client = self.client.properties
            let passThrough = client.filter { key, _ in self.client.librdkafka[key] != nil }
            client.removeAll { key, _ in self.client.librdkafka[key] != nil }
            return client + typed + passThrough
        }
    }

    public let configuration: Configuration
    let handle: OpaquePointer
    private let callbacks: ClientCallbacks
    private let thread: ClientThread
    private let logger: Logger
    private let running = RunFlag()
    /// Message ids step by ``DeliveryEpochs/slots``: their low bits are left for the epoch.
    private let nextID = Atomic<UInt64>(DeliveryEpochs.slots)
    private let router: DeliveryRouter
    private let topics = Mutex<[String: OpaquePointer]>([:])

    /// Marks message ids whose report a task awaits.
    static let awaitedFlag: UInt64 = 1 << 63

    /// Creates the producer and starts its delivery-report thread.
    ///
    /// - Parameters:
    ///   - onDelivery: called on the producer thread for every message sent with ``send(_:)``; failures
    ///     are also counted in ``failedDeliveries``.
    /// - Throws: ``KafkaError/invalidSetting(key:reason:)`` naming the first rejected property.
    public init(
        configuration: Configuration,
        onDelivery: (@Sendable (DeliveryReport) -> Void)? = nil,
        statistics: (@Sendable (KafkaStatistics) -> Void)? = nil,
        logger: Logger
    ) throws(KafkaError) {
        self.configuration = configuration
        self.logger = logger
        var conf = ConfBuilder()
        try conf.set(configuration.properties)
        let callbacks = ClientCallbacks(logger: logger, statistics: statistics)
        callbacks.install(on: conf.pointer!)
        rd_kafka_conf_set_dr_msg_cb(conf.pointer, kafkaDeliveryCallback)
        self.callbacks = callbacks
        self.handle = try conf.makeClient(type: RD_KAFKA_PRODUCER)
        self.thread = ClientThread(name: "crowdpulse.producer")
        let router = DeliveryRouter(logger: logger, onDelivery: onDelivery)
        self.router = router
        callbacks.delivery = { message in router.delivered(message) }
        // The topics with a codec of their own get their handles now (an invalid codec fails here). librdkafka
        // keeps the first handle of a topic, and every use of a topic (sending, metadata) goes through
        // ``topicHandle(_:)``, so none is created with the defaults first.
        for (topic, codec) in configuration.topicCompression {
            var topicConf = TopicConfBuilder()
            try topicConf.set("compression.codec", codec, topic: topic)
            let conf = SendableHandle(pointer: topicConf.take()!)
            self.topics.withLock { $0[topic] = rd_kafka_topic_new(self.handle, topic, conf.pointer)! }
        }
        // The poll loop holds no reference to `self`, so the producer can be released while it runs.
        let handle = SendableHandle(pointer: self.handle)
        let running = self.running
        self.thread.submit {
            while running.isSet {
                _ = rd_kafka_poll(handle.pointer, 100)
            }
        }
    }

    deinit {
        self.running.clear()
        self.thread.stop()
        for (_, topic) in self.topics.withLock({ $0 }) { rd_kafka_topic_destroy(topic) }
        rd_kafka_destroy(self.handle)
    }

    /// Messages sent but not yet reported, plus librdkafka's own requests in flight.
    public var outstanding: Int { Int(rd_kafka_outq_len(self.handle)) }

    /// How many delivery reports have carried an error so far.
    public var failedDeliveries: Int { self.router.failures.load(ordering: .relaxed) }

    /// Enqueues a record and returns its id; its ``DeliveryReport`` goes to `onDelivery`.
    ///
    /// When librdkafka's queue is full this waits (serving delivery reports) up to
    /// `configuration.enqueueTimeout` rather than failing.
    /// - Throws: when the record is refused before it is queued (unknown partition, too large, fatal
    ///   producer error, queue full for too long).
    @discardableResult
    public func send(_ record: ProducerRecord) throws(KafkaError) -> UInt64 {
        let id = self.nextID.wrappingAdd(DeliveryEpochs.slots, ordering: .relaxed).oldValue
        try self.enqueue(record, opaque: id)
        return id
    }

    /// Ends the current delivery epoch and returns it. Every message sent before this call belongs to it
    /// or an earlier one; ``isDelivered(through:)`` tells when they all have a delivery report.
    ///
    /// This is a `flush` that does not block: the caller goes on sending (into the next epoch) while the
    /// earlier messages are delivered, and checks back later.
    public func closeEpoch() -> UInt64 { self.router.epochs.withLock { $0.close() } }

    /// Whether every message sent in `epoch` or before it has its delivery report (delivered or failed;
    /// failures are counted in ``failedDeliveries``).
    public func isDelivered(through epoch: UInt64) -> Bool {
        self.router.epochs.withLock { $0.isDelivered(through: epoch) }
    }

    /// Sends a record and waits for its delivery report.
    public func sendAndWait(_ record: ProducerRecord) async throws(KafkaError) -> DeliveryReport {
        let id = self.nextID.wrappingAdd(DeliveryEpochs.slots, ordering: .relaxed).oldValue | Self.awaitedFlag
        let enqueueError = Mutex<KafkaError?>(nil)
        let report = await withCheckedContinuation { (continuation: CheckedContinuation<DeliveryReport, Never>) in
            self.router.waiters.withLock { $0[id] = continuation }
            do throws(KafkaError) {
                try self.enqueue(record, opaque: id)
            } catch {
                enqueueError.withLock { $0 = error }
                if let continuation = self.router.waiters.withLock({ $0.removeValue(forKey: id) }) {
                    continuation.resume(
                        returning: DeliveryReport(
                            id: id,
                            topic: record.topic,
                            partition: record.partition ?? -1,
                            offset: nil,
                            error: error
                        )
                    )
                }
            }
        }
        if let error = enqueueError.withLock({ $0 }) { throw error }
        if let error = report.error { throw error }
        return report
    }

    private func topicHandle(_ name: String) -> OpaquePointer {
        self.topics.withLock { topics in
            if let existing = topics[name] { return existing }
            let topic = rd_kafka_topic_new(self.handle, name, nil)!
            topics[name] = topic
            return topic
        }
    }

    /// - Parameter id: the message id, a multiple of ``DeliveryEpochs/slots`` (its low bits carry the
    ///   message's delivery epoch to the report).
    private func enqueue(_ record: ProducerRecord, opaque id: UInt64) throws(KafkaError) {
        let topic = self.topicHandle(record.topic)
        let slot = self.router.epochs.withLock { $0.count() }
        let opaque = id | slot
        var headers: OpaquePointer? = nil
        if !record.headers.isEmpty {
            headers = rd_kafka_headers_new(record.headers.count)
            for header in record.headers {
                if let value = header.value {
                    value.withUnsafeBytes { bytes in
                        _ = rd_kafka_header_add(headers, header.name, -1, bytes.baseAddress, bytes.count)
                    }
                } else {
                    _ = rd_kafka_header_add(headers, header.name, -1, nil, 0)
                }
            }
        }
        let deadline = ContinuousClock.now + self.configuration.enqueueTimeout
        while true {
            let error = Self.produce(
                self.handle,
                topic: topic,
                record: record,
                headers: headers,
                opaque: opaque
            )
            guard let error else { return }  // the message now owns `headers`
            let code = rd_kafka_error_code(error)
            if code == RD_KAFKA_RESP_ERR__QUEUE_FULL && ContinuousClock.now < deadline {
                rd_kafka_error_destroy(error)
                _ = rd_kafka_poll(self.handle, 10)
                continue
            }
            if let headers { rd_kafka_headers_destroy(headers) }
            self.router.epochs.withLock { $0.uncount(slot: slot) }
            throw KafkaError.consuming(error)
        }
    }

    private static func produce(
        _ handle: OpaquePointer,
        topic: OpaquePointer,
        record: ProducerRecord,
        headers: OpaquePointer?,
        opaque: UInt64
    ) -> OpaquePointer? {
        func withOptionalBytes<R>(_ bytes: [UInt8]?, _ body: (UnsafeRawBufferPointer?) -> R) -> R {
            guard let bytes else { return body(nil) }
            return bytes.withUnsafeBytes { body($0) }
        }
        return withOptionalBytes(record.key) { key in
            withOptionalBytes(record.value) { value in
                var fields = [rd_kafka_vu_t](repeating: rd_kafka_vu_t(), count: 8)
                var count = 0
                func add(_ configure: (inout rd_kafka_vu_t) -> Void) {
                    configure(&fields[count])
                    count += 1
                }
                add {
                    $0.vtype = RD_KAFKA_VTYPE_RKT
                    $0.u.rkt = topic
                }
                add {
                    $0.vtype = RD_KAFKA_VTYPE_PARTITION
                    $0.u.i32 = record.partition ?? RD_KAFKA_PARTITION_UA
                }
                add {
                    $0.vtype = RD_KAFKA_VTYPE_MSGFLAGS
                    $0.u.i = RD_KAFKA_MSG_F_COPY
                }
                add {
                    $0.vtype = RD_KAFKA_VTYPE_OPAQUE
                    $0.u.ptr = UnsafeMutableRawPointer(bitPattern: UInt(opaque))
                }
                if let value {
                    add {
                        $0.vtype = RD_KAFKA_VTYPE_VALUE
                        $0.u.mem.ptr = UnsafeMutableRawPointer(mutating: value.baseAddress)
                        $0.u.mem.size = value.count
                    }
                }
                if let key {
                    add {
                        $0.vtype = RD_KAFKA_VTYPE_KEY
                        $0.u.mem.ptr = UnsafeMutableRawPointer(mutating: key.baseAddress)
                        $0.u.mem.size = key.count
                    }
                }
                if let headers {
                    add {
                        $0.vtype = RD_KAFKA_VTYPE_HEADERS
                        $0.u.headers = headers
                    }
                }
                if let timestamp = record.timestamp {
                    add {
                        $0.vtype = RD_KAFKA_VTYPE_TIMESTAMP
                        $0.u.i64 = timestamp
                    }
                }
                return rd_kafka_produceva(handle, &fields, count)
            }
        }
    }

    /// Waits until every queued message has a delivery report, or `timeout` passes.
    ///
    /// - Throws: `_TIMED_OUT` when messages are still outstanding at the deadline.
    public func flush(timeout: Duration = .seconds(30)) async throws(KafkaError) {
        let handle = SendableHandle(pointer: self.handle)
        let code = await offloadBlocking { rd_kafka_flush(handle.pointer, timeout.timeoutMilliseconds).rawValue }
        let result = rd_kafka_resp_err_t(rawValue: code)
        guard result == RD_KAFKA_RESP_ERR_NO_ERROR else { throw .code(result) }
    }

    /// The blocking form of ``flush(timeout:)``, for rebalance hooks and other non-async contexts.
    public func flushSync(timeout: Duration = .seconds(30)) throws(KafkaError) {
        let result = rd_kafka_flush(self.handle, timeout.timeoutMilliseconds)
        guard result == RD_KAFKA_RESP_ERR_NO_ERROR else { throw .code(result) }
    }

    /// The producer's fatal error, if it has one (for example after being fenced); the instance must then
    /// be recreated.
    public var fatalError: KafkaError? {
        var text = [CChar](repeating: 0, count: 512)
        let code = rd_kafka_fatal_error(self.handle, &text, text.count)
        guard code != RD_KAFKA_RESP_ERR_NO_ERROR else { return nil }
        var detail = KafkaError.Detail(code, text: String(nulTerminated: text))
        detail.isFatal = true
        return .librdkafka(detail)
    }

    /// The number of partitions of `topic`, from cluster metadata.
    public func partitionCount(of topic: String, timeout: Duration = .seconds(10)) throws(KafkaError) -> Int {
        let handle = self.topicHandle(topic)
        var metadata: UnsafePointer<rd_kafka_metadata>? = nil
        let code = rd_kafka_metadata(self.handle, 0, handle, &metadata, timeout.timeoutMilliseconds)
        guard code == RD_KAFKA_RESP_ERR_NO_ERROR, let metadata else { throw .code(code) }
        defer { rd_kafka_metadata_destroy(metadata) }
        guard metadata.pointee.topic_cnt > 0 else { throw .code(RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) }
        let entry = metadata.pointee.topics[0]
        guard entry.err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw .code(entry.err, text: "topic \(topic)") }
        return Int(entry.partition_cnt)
    }

    /// The partition's high watermark (the offset the next record will get), asked from its leader.
    public func highWatermark(_ partition: TopicPartition, timeout: Duration = .seconds(2)) throws(KafkaError) -> Int64
    {
        try queryWatermarks(self.handle, partition, timeout: timeout).high
    }

    // MARK: - Transactions

    /// Registers `transactional.id` with the coordinator and fences older producers with the same id.
    public func initTransactions(timeout: Duration = .seconds(30)) async throws(KafkaError) {
        let handle = SendableHandle(pointer: self.handle)
        try await Self.transactional { rd_kafka_init_transactions(handle.pointer, timeout.timeoutMilliseconds) }
    }

    /// Starts a transaction; every message sent until commit or abort belongs to it.
    public func beginTransaction() throws(KafkaError) {
        if let error = rd_kafka_begin_transaction(self.handle) { throw KafkaError.consuming(error) }
    }

    /// Adds consumer offsets to the current transaction: they commit if and only if it commits.
    public func sendOffsetsToTransaction(
        _ offsets: [TopicPartitionOffset],
        groupMetadata: ConsumerGroupMetadata,
        timeout: Duration = .seconds(30)
    ) async throws(KafkaError) {
        let handle = SendableHandle(pointer: self.handle)
        try await Self.transactional {
            let list = PartitionList(offsets)
            return withExtendedLifetime(groupMetadata) {
                rd_kafka_send_offsets_to_transaction(
                    handle.pointer,
                    list.pointer,
                    groupMetadata.pointer,
                    timeout.timeoutMilliseconds
                )
            }
        }
    }

    /// Flushes and commits the current transaction.
    ///
    /// - Throws: an error with `requiresAbort` (call ``abortTransaction(timeout:)``), `isRetriable`
    ///   (call again), or `isFatal` (recreate the producer).
    public func commitTransaction(timeout: Duration = .seconds(30)) async throws(KafkaError) {
        let handle = SendableHandle(pointer: self.handle)
        try await Self.transactional { rd_kafka_commit_transaction(handle.pointer, timeout.timeoutMilliseconds) }
    }

    /// Aborts the current transaction; its messages are marked aborted for `read_committed` readers.
    public func abortTransaction(timeout: Duration = .seconds(30)) async throws(KafkaError) {
        let handle = SendableHandle(pointer: self.handle)
        try await Self.transactional { rd_kafka_abort_transaction(handle.pointer, timeout.timeoutMilliseconds) }
    }

    /// ``sendOffsetsToTransaction(_:groupMetadata:timeout:)`` and ``commitTransaction(timeout:)`` in one
    /// blocking call, for a rebalance hook (which runs on the consumer thread and must finish before the
    /// partitions move).
    public func commitTransactionSync(
        offsets: [TopicPartitionOffset],
        groupMetadata: ConsumerGroupMetadata,
        timeout: Duration = .seconds(30)
    ) throws(KafkaError) {
        if !offsets.isEmpty {
            let list = PartitionList(offsets)
            let sent = withExtendedLifetime(groupMetadata) {
                rd_kafka_send_offsets_to_transaction(
                    self.handle,
                    list.pointer,
                    groupMetadata.pointer,
                    timeout.timeoutMilliseconds
                )
            }
            if let sent { throw KafkaError.consuming(sent) }
        }
        if let error = rd_kafka_commit_transaction(self.handle, timeout.timeoutMilliseconds) {
            throw KafkaError.consuming(error)
        }
    }

    /// ``abortTransaction(timeout:)``, blocking: for a rebalance hook.
    public func abortTransactionSync(timeout: Duration = .seconds(30)) throws(KafkaError) {
        if let error = rd_kafka_abort_transaction(self.handle, timeout.timeoutMilliseconds) {
            throw KafkaError.consuming(error)
        }
    }

    private static func transactional(_ call: @escaping @Sendable () -> OpaquePointer?) async throws(KafkaError) {
        let error: KafkaError? = await offloadBlocking { call().map(KafkaError.consuming) }
        if let error { throw error }
    }
}

/// Turns delivery reports into ``DeliveryReport`` values and routes them to the waiting task or the
/// producer's `onDelivery` handler. Separate from ``KafkaProducer`` so that librdkafka's threads never
/// hold the producer itself. `Sendable`: all state is in a `Mutex` or an atomic.
final class DeliveryRouter: Sendable {
    let logger: Logger
    let onDelivery: (@Sendable (DeliveryReport) -> Void)?
    let failures = Atomic<Int>(0)
    let waiters = Mutex<[UInt64: CheckedContinuation<DeliveryReport, Never>]>([:])
    let epochs = Mutex(DeliveryEpochs())

    init(logger: Logger, onDelivery: (@Sendable (DeliveryReport) -> Void)?) {
        self.logger = logger
        self.onDelivery = onDelivery
    }

    /// Called on a librdkafka-serving thread for each delivery report.
    func delivered(_ message: UnsafePointer<rd_kafka_message_t>) {
        let opaque = UInt64(UInt(bitPattern: message.pointee._private))
        let id = opaque & ~(DeliveryEpochs.slots - 1)
        let failed = message.pointee.err != RD_KAFKA_RESP_ERR_NO_ERROR
        if failed {
            self.failures.add(1, ordering: .relaxed)
        }
        // Counted after the failure, so that a caller that sees its epoch delivered also sees the failure.
        self.epochs.withLock { $0.uncount(slot: opaque & (DeliveryEpochs.slots - 1)) }
        let awaited = id & KafkaProducer.awaitedFlag != 0
        // Most messages have nobody to report to: build no report (two strings) for them.
        guard awaited || self.onDelivery != nil || (failed && self.logger.logLevel <= .debug) else { return }
        let topic = String(cString: rd_kafka_topic_name(message.pointee.rkt))
        let error: KafkaError? =
            failed
            ? .deliveryFailed(
                topic: topic,
                partition: message.pointee.partition,
                KafkaError.Detail(message.pointee.err)
            )
            : nil
        let report = DeliveryReport(
            id: id,
            topic: topic,
            partition: message.pointee.partition,
            offset: error == nil ? message.pointee.offset : nil,
            error: error
        )
        if awaited {
            self.waiters.withLock { $0.removeValue(forKey: id) }?.resume(returning: report)
        } else {
            if let error {
                self.logger.debug("Delivery failed", metadata: ["kafka.error": "\(error)"])
            }
            self.onDelivery?(report)
        }
    }

}

/// Messages awaiting their delivery report, per delivery epoch, in a small ring.
///
/// Epochs are closed by a committer that then waits for the epoch it closed before closing another, so
/// only the last two or three epochs ever have messages outstanding; the ring has room for eight. Should
/// an epoch's messages still be outstanding eight epochs later, they share a slot with a newer epoch and
/// keep that one from counting as delivered: a wait that is too long, never a wrong answer for it.
struct DeliveryEpochs: Sendable {
    static let slots: UInt64 = 8
    private(set) var current: UInt64 = 0
    private var outstanding = [Int](repeating: 0, count: Int(slots))

    /// Counts a message sent now; returns its slot, to carry to its report.
    mutating func count() -> UInt64 {
        let slot = self.current & (Self.slots - 1)
        self.outstanding[Int(slot)] += 1
        return slot
    }

    mutating func uncount(slot: UInt64) {
        self.outstanding[Int(slot)] -= 1
    }

    mutating func close() -> UInt64 {
        self.current += 1
        return self.current - 1
    }

    func isDelivered(through epoch: UInt64) -> Bool {
        guard epoch < self.current else { return false }  // still open: more may be sent into it
        let oldest = self.current >= Self.slots ? self.current - Self.slots + 1 : 0
        guard oldest <= epoch else { return true }
        return (oldest...epoch).allSatisfy { self.outstanding[Int($0 & (Self.slots - 1))] == 0 }
    }
}

private func kafkaDeliveryCallback(
    handle: OpaquePointer?,
    message: UnsafePointer<rd_kafka_message_t>?,
    opaque: UnsafeMutableRawPointer?
) {
    guard let opaque, let message else { return }
    Unmanaged<ClientCallbacks>.fromOpaque(opaque).takeUnretainedValue().delivery?(message)
}
