/// The ingestion stage of one input partition: size and content checks, decoding, duplicate removal.
///
/// Pure: the caller passes the record's bytes and the wall clock, and performs the side effects (dead
/// letters, counting) that the returned ``Outcome`` calls for.
public struct Ingestor: Sendable {
    public enum Outcome: Sendable, Equatable {
        /// A new, valid event.
        case accepted(Event)
        /// A valid event whose `event_id` was seen within the dedup horizon: counted and skipped.
        case duplicate(Event)
        /// Rejected: goes to the dead-letter topic with the reason.
        case rejected(Rejection)
        /// A record with a null value (a compaction tombstone): counted and skipped, not dead-lettered.
        case tombstone
    }

    /// Running totals of one ingestor.
    public struct Counters: Sendable, Equatable {
        public var records = 0
        public var accepted = 0
        public var duplicates = 0
        public var tombstones = 0
        public var rejected: [Rejection.Reason: Int] = [:]
        /// Accepted events per type, indexed by `Event.Kind.rawValue`.
        public var acceptedByKind: [Int] = Array(repeating: 0, count: Event.Kind.allCases.count)

        public init() {}

        public var rejectedTotal: Int { self.rejected.values.reduce(0, +) }

        public mutating func add(_ other: Counters) {
            self.records += other.records
            self.accepted += other.accepted
            self.duplicates += other.duplicates
            self.tombstones += other.tombstones
            self.rejected.merge(other.rejected, uniquingKeysWith: +)
            for index in self.acceptedByKind.indices { self.acceptedByKind[index] += other.acceptedByKind[index] }
        }
    }

    public var decoder: EventDecoder
    public var deduplicator: Deduplicator
    public private(set) var counters = Counters()

    public init(
        decoder: EventDecoder = EventDecoder(),
        deduplicator: Deduplicator = Deduplicator()
    ) {
        self.decoder = decoder
        self.deduplicator = deduplicator
    }

    /// Ingests one record.
    ///
    /// - Parameters:
    ///   - value: the record's value; `nil` for a tombstone.
    ///   - nowMillis: the wall clock for the future-skew check; `nil` in replay.
    public mutating func ingest(_ value: UnsafeRawBufferPointer?, nowMillis: Int64?) -> Outcome {
        self.counters.records += 1
        guard let value else {
            self.counters.tombstones += 1
            return .tombstone
        }
        let event: Event
        do throws(Rejection) {
            event = try self.decoder.decodeEvent(value, nowMillis: nowMillis)
        } catch {
            self.counters.rejected[error.reason, default: 0] += 1
            return .rejected(error)
        }
        if self.deduplicator.isDuplicate(eventID: event.eventID, occurredAt: event.occurredAt) {
            self.counters.duplicates += 1
            return .duplicate(event)
        }
        self.counters.accepted += 1
        self.counters.acceptedByKind[Int(event.kind.rawValue)] += 1
        return .accepted(event)
    }
}

/// The dead-letter record contract (`crowdpulse.deadletter` topic): original bytes, these headers.
public enum DeadLetter {
    public static let reasonHeader = "crowdpulse.reason"
    public static let detailHeader = "crowdpulse.detail"
    public static let sourceTopicHeader = "crowdpulse.source.topic"
    public static let sourcePartitionHeader = "crowdpulse.source.partition"
    public static let sourceOffsetHeader = "crowdpulse.source.offset"
    public static let truncatedHeader = "crowdpulse.truncated"

    /// The headers of a dead letter, in a fixed order.
    public static func headers(
        for rejection: Rejection,
        sourceTopic: String,
        partition: Int32,
        offset: Int64,
        truncated: Bool = false
    ) -> [(name: String, value: String)] {
        var headers = [
            (self.reasonHeader, rejection.reason.rawValue),
            (self.detailHeader, rejection.detail),
            (self.sourceTopicHeader, sourceTopic),
            (self.sourcePartitionHeader, String(partition)),
            (self.sourceOffsetHeader, String(offset)),
        ]
        if truncated { headers.append((self.truncatedHeader, "true")) }
        return headers.map { (name: $0.0, value: $0.1) }
    }
}
