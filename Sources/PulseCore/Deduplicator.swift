/// Drops events whose `event_id` was already seen within a horizon of event time, in bounded memory.
///
/// Ids are remembered as 64-bit hashes (FNV-1a) in a flat set (``HashSet64``, 8 bytes a slot), and listed per
/// minute of their event time; buckets older than the newest event time minus the horizon are forgotten. With
/// a million ids remembered, the chance that two different ids collide is about 3 × 10⁻⁸. When
/// ``Configuration/maxEntries`` is reached the oldest bucket is dropped early (counted in ``evictedEarly``), so
/// memory stays bounded under any stream.
public struct Deduplicator: Sendable {
    public struct Configuration: Sendable, Equatable {
        /// How long (in event time) an id is remembered (`ingest.dedup_horizon`, default 10 min).
        public var horizonMillis: Int64
        /// Most ids remembered at once.
        public var maxEntries: Int
        /// Width of one bucket of event time.
        public var bucketMillis: Int64

        public init(horizonMillis: Int64 = 10 * 60_000, maxEntries: Int = 1_000_000, bucketMillis: Int64 = 60_000) {
            precondition(horizonMillis >= 0 && maxEntries > 0 && bucketMillis > 0)
            self.horizonMillis = horizonMillis
            self.maxEntries = maxEntries
            self.bucketMillis = bucketMillis
        }
    }

    public let configuration: Configuration
    /// The id hashes remembered: those of every bucket's list. An id is recorded only when it is absent, and a
    /// bucket is forgotten whole, so each hash is in exactly one bucket and the set needs no bucket per id.
    private var seen = HashSet64()
    /// bucket → the hashes recorded in it, for eviction and checkpoints.
    private var buckets: [Int64: HashLog] = [:]
    private var newestBucket: Int64?
    /// Ids forgotten before their horizon because of ``Configuration/maxEntries``.
    public private(set) var evictedEarly = 0

    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
    }

    /// Ids currently remembered.
    public var count: Int { self.seen.count }

    /// Records `eventID` and tells whether it was already seen within the horizon.
    public mutating func isDuplicate(eventID: String, occurredAt: Int64) -> Bool {
        let hash = stableHash(eventID)
        let bucket = Self.floorDiv(occurredAt, self.configuration.bucketMillis)
        let horizonBuckets = Self.ceilDiv(self.configuration.horizonMillis, self.configuration.bucketMillis)
        // An event older than the horizon cannot be judged (its twin may have been forgotten): let it through
        // without remembering it, unless its id is still remembered; the window stage decides whether it is
        // late.
        if let newest = self.newestBucket, bucket < newest - horizonBuckets { return self.seen.contains(hash) }
        // One probe finds it or records it.
        guard self.seen.insert(hash) else { return true }
        self.buckets[bucket, default: HashLog()].append(hash)
        if bucket > (self.newestBucket ?? Int64.min) {
            self.newestBucket = bucket
            // At most horizon/bucket + 1 buckets are alive, so scanning their keys is cheap.
            for old in self.buckets.keys where old < bucket - horizonBuckets {
                self.forget(old, early: false)
            }
        }
        while self.seen.count > self.configuration.maxEntries, let oldest = self.buckets.keys.min() {
            self.forget(oldest, early: true)
        }
        return false
    }

    private mutating func forget(_ bucket: Int64, early: Bool) {
        guard let hashes = self.buckets.removeValue(forKey: bucket) else { return }
        hashes.forEach { hash in
            if self.seen.remove(hash), early { self.evictedEarly += 1 }
        }
    }

    public static func floorDiv(_ value: Int64, _ divisor: Int64) -> Int64 {
        value >= 0 ? value / divisor : (value - divisor + 1) / divisor
    }

    static func ceilDiv(_ value: Int64, _ divisor: Int64) -> Int64 {
        (value + divisor - 1) / divisor
    }
}

/// The hashes of one bucket in the order they were recorded, in blocks of ``blockSize``: a block is never
/// changed once full. A checkpoint's capture (``Deduplicator/Checkpoint``) shares the blocks, so the next
/// hash recorded copies at most the one block being filled, not the whole bucket; and a full block is a
/// ``SealedBlock``, which the changelog stores once rather than in every checkpoint.
struct HashLog: Sendable {
    static let blockSize = 4096
    private var full: [SealedBlock] = []
    private var last: [UInt64] = []
    private(set) var count = 0

    mutating func append(_ hash: UInt64) {
        // No capacity reserved up front: a quiet partition's minute may hold a handful of ids, and 32 KiB
        // per partition and minute would add up over many partitions.
        self.last.append(hash)
        self.count += 1
        if self.last.count == Self.blockSize {
            self.full.append(SealedBlock(self.last))
            self.last = []
        }
    }

    func forEach(_ body: (UInt64) throws -> Void) rethrows {
        for block in self.full { for hash in block.words { try body(hash) } }
        for hash in self.last { try body(hash) }
    }

    func write(to writer: inout BinaryWriter) {
        for block in self.full { writer.sealed(block) }
        writer.fixed64s(self.last)
    }
}

// MARK: - Binary state

extension Deduplicator {
    static let stateVersion: UInt8 = 1

    /// Appends the remembered ids in the binary format (``BinaryWriter``), for checkpoints.
    ///
    /// The ids are written per bucket of event time, buckets in ascending order, each bucket's ids in the
    /// order they were recorded (which a restore keeps), so that the same state always gives the same bytes.
    /// The configuration is not written.
    ///
    /// The buckets' lists hold exactly the ids in `seen`, each once (an id is recorded only when it is
    /// absent, and a bucket is always forgotten whole), so the lists are written as they are: no lookup
    /// and no sort per id, which made this the largest part of a checkpoint.
    public func write(to writer: inout BinaryWriter) {
        self.checkpoint.write(to: &writer)
    }

    /// What a checkpoint writes, without the lookup table (which it does not need): taking it costs next to
    /// nothing, and unlike a copy of the whole deduplicator it leaves the table unshared, so the next id
    /// recorded does not copy the table (at 50 000 events/s with a 2-minute horizon: ~200 MB per checkpoint).
    public var checkpoint: Checkpoint {
        Checkpoint(
            newestBucket: self.newestBucket,
            evictedEarly: self.evictedEarly,
            count: self.seen.count,
            buckets: self.buckets
        )
    }

    /// The remembered ids at one instant, to encode away from the deduplicator (``checkpoint``).
    public struct Checkpoint: Sendable {
        let newestBucket: Int64?
        let evictedEarly: Int
        let count: Int
        let buckets: [Int64: HashLog]

        /// Ids remembered.
        public var entries: Int { self.count }

        /// Appends the ids as ``Deduplicator/write(to:)`` does.
        public func write(to writer: inout BinaryWriter) {
            writer.byte(Deduplicator.stateVersion)
            writer.optionalInt(self.newestBucket)
            writer.int(self.evictedEarly)
            writer.varint(UInt64(self.count))
            let buckets = self.buckets.keys.sorted()
            writer.varint(UInt64(buckets.count))
            for bucket in buckets {
                let hashes = self.buckets[bucket]!
                writer.int(bucket)
                writer.varint(UInt64(hashes.count))
                hashes.write(to: &writer)
            }
        }
    }

    /// Restores a deduplicator written by ``write(to:)``.
    ///
    /// - Parameter configuration: the current configuration (it may differ from the one the state was
    ///   written under; the horizon and the entry limit apply from the next event on).
    /// - Throws: ``BinaryDecodingError`` when the bytes are truncated or do not describe a valid state.
    public init(reading reader: inout BinaryReader, configuration: Configuration) throws(BinaryDecodingError) {
        try reader.version(Self.stateVersion, of: "deduplicator")
        self.init(configuration: configuration)
        self.newestBucket = try reader.optionalInt64()
        self.evictedEarly = try reader.counter()
        let total = try reader.count()
        self.seen = HashSet64(minimumCapacity: total)
        let bucketCount = try reader.count()
        for _ in 0..<bucketCount {
            let bucket = try reader.int64()
            guard let newest = self.newestBucket, bucket <= newest else {
                throw reader.error("bucket \(bucket) after the newest bucket")
            }
            let count = try reader.count()
            var hashes = HashLog()
            for _ in 0..<count {
                let hash = try reader.fixed64()
                guard self.seen.insert(hash) else {
                    throw reader.error("id hash remembered twice")
                }
                hashes.append(hash)
            }
            guard hashes.count > 0, self.buckets.updateValue(hashes, forKey: bucket) == nil else {
                throw reader.error("bucket \(bucket) empty or written twice")
            }
        }
        guard self.seen.count == total else { throw reader.error("\(self.seen.count) ids, expected \(total)") }
    }
}
