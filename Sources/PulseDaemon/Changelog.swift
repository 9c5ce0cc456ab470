import Logging
import PulseCore
import PulseKafka
import Synchronization

/// Checkpoints of each consumed partition's state on a compacted changelog topic, and their restore.
///
/// A checkpoint of one source partition (an input partition, or a repartition partition holding a brand
/// stage) is its whole encoded state, split into chunks of at most ``chunkBytes``, followed by a
/// **marker** naming the input offset the state reflects, the chunk count and a checksum. The marker is
/// only produced once the chunks and every output the checkpoint covers have been delivered (after the
/// producer flush), so a marker is always a safe place to resume from: a checkpoint cut short by a
/// crash or a failed delivery has no marker and is skipped on restore.
///
/// Keys make compaction keep exactly what a restore needs:
/// - `<topic>/<partition>/<slot>/<chunk>`: two slots, used in turn. A checkpoint never writes into the
///   slot of the last confirmed one, so that compaction cannot replace a confirmed checkpoint's chunks
///   with those of a checkpoint that never completed.
/// - `<topic>/<partition>/marker`: the latest confirmed checkpoint.
///
/// - `<topic>/<partition>/seg/<process>-<id>`: a **segment**, a block of state that never changes once
///   written (``StateSegment``: the deduplicator's full blocks of ids and the cascades' full blocks of
///   shares, most of a busy partition's state).
///   It is stored once, and each later checkpoint that holds it only names it, with its length and
///   checksum, in a manifest ahead of its other bytes (a marker of kind ``segmentedMarkerKind``). This is
///   Flink's incremental checkpoint (shared, immutable state files referenced by each checkpoint) at the
///   scale of one partition: at 50 000 events/s the checkpoints rewrote 50+ MB per second unchanged.
///   Keys carry a random tag of the writing process, so a segment's key always means the same bytes. A
///   segment no checkpoint names any more gets a tombstone once the marker that stopped naming it is
///   delivered; segments a restore found get one once this process's own checkpoint replaced them.
///
/// Otherwise checkpoints are whole rather than per-entity deltas: a restore needs only the latest one, so
/// the topic stays small without relying on compaction. The embedded broker does not compact, and keeps
/// only about 5 MiB per partition (``retainedBytes``): for it a segment is written again once enough bytes
/// followed it that the checkpoint naming it, and the next one, might no longer fit behind it
/// (``refreshAfter(total:)``). With Kafka (compaction keeps every key's latest value) set it to 0.
public final class Changelog: Sendable {
    /// Largest chunk value; below librdkafka's default `message.max.bytes` with room for headers.
    public static let chunkBytes = 512 * 1024
    static let magic: UInt8 = 0xC5
    static let chunkKind: UInt8 = 1
    /// A marker whose checksum is ``checksum(_:)``.
    static let markerKind: UInt8 = 3
    /// A marker of versions before 2026-11-27, checksummed byte by byte (``legacyChecksum(_:)``): still read.
    static let legacyMarkerKind: UInt8 = 2
    /// A segment's record: its bytes, under `<prefix>seg/<process>-<id>`.
    static let segmentKind: UInt8 = 4
    /// A marker like kind 3 whose chunks hold a manifest of segments, then the state's other bytes.
    static let segmentedMarkerKind: UInt8 = 5
    /// `processing.changelog_retained_bytes`'s default: what the embedded broker keeps per partition.
    public static let defaultRetainedBytes = 5 * 1024 * 1024

    /// One partition's encoded state and the input offset it reflects (the next offset to process).
    public struct Snapshot: Sendable {
        public var source: TopicPartition
        public var offset: Int64
        /// The state's bytes, without its segments.
        public var state: [UInt8]
        /// Blocks left out of ``state`` (``BinaryWriter/segmenting``), in order.
        public var segments: [StateSegment]

        public init(source: TopicPartition, offset: Int64, state: [UInt8], segments: [StateSegment] = []) {
            self.source = source
            self.offset = offset
            self.state = state
            self.segments = segments
        }

        /// The whole state: what a restore gives back.
        public var assembled: [UInt8] { StateSegment.splice(self.segments, into: self.state) }
    }

    /// A checkpoint whose chunks are queued; its marker follows once they are delivered.
    public struct Pending: Sendable {
        var source: TopicPartition
        var offset: Int64
        var slot: UInt8
        var chunks: Int
        var checksum: UInt64
        var bytes: Int
        var segmented: Bool
        /// This source's checkpoints written so far by this process, this one included.
        var sequence: UInt64
        /// Bytes queued for this checkpoint: its chunks and the segments it stored (not those it only names).
        public var written: Int
    }

    /// What this process stored of one source's segments.
    struct SegmentBook {
        struct Stored {
            var key: [UInt8]
            var checksum: UInt64
            /// The changelog partition's byte count (``partitionBytes``) when it was last written.
            var writtenAt: Int
            /// The latest checkpoint (``Pending/sequence``) naming it.
            var lastReference: UInt64
            /// A checkpoint that may have named it failed to queue: write it again.
            var rewrite = false
        }

        var written: UInt64 = 0
        var confirmed: UInt64 = 0
        var stored: [UInt64: Stored] = [:]
        /// Segment keys found by a restore (another process's, or this one's before a restore); they may be
        /// named by the marker restored, until a checkpoint of this process replaces it.
        var found: [[UInt8]] = []
    }

    /// What a restore found.
    public struct Restored: Sendable {
        public var offset: Int64
        public var state: [UInt8]
        /// Changelog records read (all sources of the changelog partition).
        public var recordsRead: Int
        public var duration: Duration
    }

    public let topic: String
    public let partitions: Int32
    /// Identifies the state layout and the window grid: a checkpoint written under another one is not
    /// restored (its open windows would not line up).
    public let fingerprint: UInt64
    let producer: KafkaProducer
    let reader: PartitionReader
    let logger: Logger
    /// The slot of the last confirmed checkpoint per source.
    private let confirmedSlots = Mutex<[TopicPartition: UInt8]>([:])
    /// The segments stored per source.
    private let books = Mutex<[TopicPartition: SegmentBook]>([:])
    /// Bytes queued per changelog partition since this process started.
    private let partitionBytes = Mutex<[Int32: Int]>([:])
    /// How much of each changelog partition the broker keeps (0: all that compaction keeps).
    public let retainedBytes: Int
    /// Sources told once that their checkpoints are too large for ``retainedBytes``.
    private let warned = Mutex<Set<TopicPartition>>([])
    /// Tags this process's segment keys: 16 random hex digits.
    let process: String

    public init(
        topic: String,
        partitions: Int32,
        fingerprint: UInt64,
        producer: KafkaProducer,
        client: KafkaClientConfiguration,
        retainedBytes: Int = Changelog.defaultRetainedBytes,
        logger: Logger
    ) throws(KafkaError) {
        self.topic = topic
        self.partitions = max(1, partitions)
        self.fingerprint = fingerprint
        self.producer = producer
        self.reader = try PartitionReader(client: client, logger: logger)
        self.retainedBytes = max(0, retainedBytes)
        let tag = String(UInt64.random(in: 0...UInt64.max), radix: 16)
        self.process = String(repeating: "0", count: 16 - tag.count) + tag
        self.logger = logger
    }

    /// The changelog partition holding `source`'s checkpoints.
    public func changelogPartition(of source: TopicPartition) -> Int32 {
        source.partition % self.partitions
    }

    static func keyPrefix(_ source: TopicPartition) -> String { "\(source.topic)/\(source.partition)/" }

    /// Queues the chunks of each snapshot, and the segments its changelog partition does not hold yet
    /// (inside the current transaction, if any).
    public func write(_ snapshots: [Snapshot]) throws(KafkaError) -> [Pending] {
        var pending: [Pending] = []
        for snapshot in snapshots {
            let source = snapshot.source
            pending.append(
                try self.books.withLock { (books) throws(KafkaError) -> Pending in
                    var book = books.removeValue(forKey: source) ?? SegmentBook()
                    defer { books[source] = book }
                    do throws(KafkaError) {
                        return try self.write(snapshot, book: &book)
                    } catch {
                        // Which of them reached the queue is unknown: store them all again next time.
                        for id in book.stored.keys { book.stored[id]?.rewrite = true }
                        throw error
                    }
                }
            )
        }
        return pending
    }

    private func write(_ snapshot: Snapshot, book: inout SegmentBook) throws(KafkaError) -> Pending {
        let slot: UInt8 = self.confirmedSlots.withLock { ($0[snapshot.source] ?? 1) == 0 ? 1 : 0 }
        let prefix = Self.keyPrefix(snapshot.source)
        let partition = self.changelogPartition(of: snapshot.source)
        var queued = self.partitionBytes.withLock { $0[partition] ?? 0 }
        defer { self.partitionBytes.withLock { $0[partition] = queued } }
        book.written += 1
        let sequence = book.written
        let segmented = !snapshot.segments.isEmpty
        var body = snapshot.state
        var written = 0
        if segmented {
            let refresh = self.refreshAfter(
                total: snapshot.state.count + snapshot.segments.reduce(0) { $0 + $1.byteCount }
            )
            if refresh == nil, self.retainedBytes > 0, self.warned.withLock({ $0.insert(snapshot.source).inserted }) {
                self.logger.warning(
                    "Checkpoints are too large for what the changelog keeps per partition: a restore may not find them whole",
                    metadata: [
                        "kafka.partition": "\(snapshot.source)", "retained_bytes": "\(self.retainedBytes)",
                        "hint": "processing.changelog_retained_bytes=0 with a compacted Kafka changelog",
                    ]
                )
            }
            // The manifest: each segment's key, length, checksum and place among the other bytes.
            var manifest = BinaryWriter(capacity: 64 * snapshot.segments.count + 8)
            manifest.varint(UInt64(snapshot.segments.count))
            var position = 0
            for segment in snapshot.segments {
                let known = book.stored[segment.id]
                var stored: SegmentBook.Stored
                if let known, !known.rewrite, refresh.map({ queued - known.writtenAt < $0 }) ?? true {
                    stored = known
                } else {
                    let bytes = segment.bytes
                    let key = known?.key ?? Array("\(prefix)seg/\(self.process)-\(segment.id)".utf8)
                    var value = [Self.magic, Self.segmentKind]
                    value.append(contentsOf: bytes)
                    try self.producer.send(
                        ProducerRecord(topic: self.topic, partition: partition, key: key, value: value)
                    )
                    queued += key.count + value.count
                    written += value.count
                    stored = SegmentBook.Stored(
                        key: key,
                        checksum: known?.checksum ?? Self.checksum(bytes[...]),
                        writtenAt: queued,
                        lastReference: sequence
                    )
                }
                stored.lastReference = sequence
                book.stored[segment.id] = stored
                manifest.varint(UInt64(segment.position - position))
                position = segment.position
                manifest.varint(UInt64(stored.key.count - prefix.utf8.count))
                manifest.append(contentsOf: stored.key[prefix.utf8.count...])
                manifest.varint(UInt64(segment.byteCount))
                manifest.fixed64(stored.checksum)
            }
            body = manifest.bytes
            body.append(contentsOf: snapshot.state)
        }
        let chunkCount = max(1, (body.count + Self.chunkBytes - 1) / Self.chunkBytes)
        for index in 0..<chunkCount {
            let lower = index * Self.chunkBytes
            let upper = min(body.count, lower + Self.chunkBytes)
            var writer = BinaryWriter(capacity: upper - lower + 24)
            writer.byte(Self.magic)
            writer.byte(Self.chunkKind)
            writer.int(snapshot.offset)
            writer.varint(UInt64(index))
            var value = writer.bytes
            value.append(contentsOf: body[lower..<upper])
            let key = Array("\(prefix)\(slot)/\(index)".utf8)
            try self.producer.send(ProducerRecord(topic: self.topic, partition: partition, key: key, value: value))
            queued += key.count + value.count
            written += value.count
        }
        return Pending(
            source: snapshot.source,
            offset: snapshot.offset,
            slot: slot,
            chunks: chunkCount,
            checksum: Self.checksum(body[...]),
            bytes: body.count,
            segmented: segmented,
            sequence: sequence,
            written: written
        )
    }

    /// After how many bytes of its changelog partition a segment is written again, for a checkpoint of
    /// `total` bytes (segments included): `nil` for never.
    ///
    /// The checkpoint confirmed last must stay whole in the retained bytes until the next one is
    /// confirmed: its segments, its own bytes, and the next checkpoint's. So segments are rewritten once
    /// half the retained bytes, less this checkpoint, followed them. A checkpoint of half the retained bytes
    /// or more cannot be kept whole that way: its segments are not rewritten at all (rewriting them would
    /// cost as much as a whole-state checkpoint, for a restore that would fail anyway).
    func refreshAfter(total: Int) -> Int? {
        guard self.retainedBytes > 0, total < self.retainedBytes / 2 else { return nil }
        return self.retainedBytes / 2 - total
    }

    /// Queues the markers of checkpoints whose chunks (and outputs) were delivered.
    public func confirm(_ pending: [Pending]) throws(KafkaError) {
        for checkpoint in pending {
            var writer = BinaryWriter(capacity: 48)
            writer.byte(Self.magic)
            writer.byte(checkpoint.segmented ? Self.segmentedMarkerKind : Self.markerKind)
            writer.int(checkpoint.offset)
            writer.byte(checkpoint.slot)
            writer.varint(UInt64(checkpoint.chunks))
            writer.varint(UInt64(checkpoint.bytes))
            writer.fixed64(checkpoint.checksum)
            writer.fixed64(self.fingerprint)
            try self.producer.send(
                ProducerRecord(
                    topic: self.topic,
                    partition: self.changelogPartition(of: checkpoint.source),
                    key: Array("\(Self.keyPrefix(checkpoint.source))marker".utf8),
                    value: writer.bytes
                )
            )
            self.confirmedSlots.withLock { $0[checkpoint.source] = checkpoint.slot }
            try self.deleteSegments(replacedBy: checkpoint)
        }
    }

    /// Queues tombstones for the segments of `checkpoint`'s source that neither the checkpoint confirmed
    /// before it nor any later one names. That checkpoint's marker is delivered by now (its commit finished
    /// before this one started), so a restore can no longer need them; this checkpoint's marker is only
    /// queued, so what its predecessor named is kept one checkpoint longer.
    private func deleteSegments(replacedBy checkpoint: Pending) throws(KafkaError) {
        let partition = self.changelogPartition(of: checkpoint.source)
        let deleted: [[UInt8]] = self.books.withLock { books in
            guard var book = books[checkpoint.source], checkpoint.sequence > book.confirmed else { return [] }
            defer { books[checkpoint.source] = book }
            let previous = book.confirmed
            book.confirmed = checkpoint.sequence
            guard previous > 0 else { return [] }
            var deleted = book.found
            book.found = []
            for (id, stored) in book.stored where stored.lastReference < previous {
                deleted.append(stored.key)
                book.stored.removeValue(forKey: id)
            }
            return deleted
        }
        for key in deleted {
            try self.producer.send(ProducerRecord(topic: self.topic, partition: partition, key: key, value: nil))
        }
    }

    /// Forgets which slot and segments a source used (it moved to another member, which continues from the
    /// marker; or its state is restored again).
    public func forget(_ sources: [TopicPartition]) {
        self.confirmedSlots.withLock { slots in
            for source in sources { slots.removeValue(forKey: source) }
        }
        self.books.withLock { books in
            for source in sources { books.removeValue(forKey: source) }
        }
    }

    /// The latest confirmed checkpoint of `source`, or `nil` when there is none (or it cannot be used).
    ///
    /// - Throws: when the changelog partition cannot be read.
    public func restore(_ source: TopicPartition) throws(KafkaError) -> Restored? {
        let clock = ContinuousClock()
        let started = clock.now
        let prefix = Array(Self.keyPrefix(source).utf8)
        let partition = TopicPartition(self.topic, self.changelogPartition(of: source))
        var scan = RestoreScan(fingerprint: self.fingerprint)
        var own = 0
        let read = try self.reader.readAll(partition) { record in
            guard let key = record.key, key.starts(with: prefix) else { return }
            own += 1
            scan.apply(key: key[prefix.count...], value: record.value)
        }
        if let problem = scan.skipped {
            self.logger.warning(
                "Changelog checkpoint not restored",
                metadata: ["kafka.partition": "\(source)", "reason": "\(problem)"]
            )
        }
        // Every segment found may be named by the marker restored: deleted once a checkpoint replaces it.
        let segmentKeys = scan.segments.keys.map { prefix + $0 }
        self.books.withLock { $0[source] = SegmentBook(found: segmentKeys) }
        guard let found = scan.latest else {
            self.logger.debug(
                "No confirmed checkpoint",
                metadata: ["kafka.partition": "\(source)", "changelog_records": "\(read)", "own_records": "\(own)"]
            )
            return nil
        }
        self.confirmedSlots.withLock { $0[source] = found.slot }
        return Restored(offset: found.offset, state: found.state, recordsRead: read, duration: clock.now - started)
    }

    /// A checksum of the state bytes, eight at a time: catches a chunk from another checkpoint or a damaged
    /// record. Each word goes through a multiply-rotate-multiply round (the round of xxHash's 64-bit
    /// variant, one lane), the tail byte by byte, then the length and a final avalanche.
    ///
    /// FNV-1a byte by byte (``legacyChecksum(_:)``) took 8 % of the daemon's CPU in a live run at 50 000
    /// events/s, where checkpoints write 100–200 MB per second; this reads several bytes per cycle.
    static func checksum(_ bytes: ArraySlice<UInt8>) -> UInt64 {
        let prime1: UInt64 = 0x9E37_79B1_85EB_CA87
        let prime2: UInt64 = 0xC2B2_AE3D_27D4_EB4F
        let prime3: UInt64 = 0x1656_67B1_9E37_79F9
        let prime5: UInt64 = 0x27D4_EB2F_1656_67C5
        func rotate(_ value: UInt64, _ bits: UInt64) -> UInt64 { (value << bits) | (value >> (64 - bits)) }
        return bytes.withUnsafeBytes { raw in
            var hash = prime5
            var offset = 0
            while offset + 8 <= raw.count {
                let word = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
                hash ^= rotate(word &* prime2, 31) &* prime1
                hash = rotate(hash, 27) &* prime1 &+ prime3
                offset += 8
            }
            while offset < raw.count {
                hash ^= UInt64(raw[offset]) &* prime5
                hash = rotate(hash, 11) &* prime1
                offset += 1
            }
            hash ^= UInt64(raw.count)
            hash ^= hash >> 33
            hash = hash &* prime2
            hash ^= hash >> 29
            hash = hash &* prime3
            return hash ^ (hash >> 32)
        }
    }

    /// FNV-1a over the state bytes: the checksum of markers of kind ``legacyMarkerKind``.
    static func legacyChecksum(_ bytes: ArraySlice<UInt8>) -> UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }
        return hash
    }
}

/// The restore's pass over one source's changelog records, in log order. Pure, so that it can be tested
/// against any sequence of records (compacted, interleaved, cut short).
struct RestoreScan {
    struct Found {
        var offset: Int64
        var slot: UInt8
        var state: [UInt8]
    }

    let fingerprint: UInt64
    /// Chunks seen per slot: index → (checkpoint offset, payload).
    private(set) var chunks: [[Int: (offset: Int64, payload: ArraySlice<UInt8>)]] = [[:], [:]]
    /// Segments seen: key after the source's prefix (`seg/…`) → bytes.
    private(set) var segments: [ArraySlice<UInt8>: ArraySlice<UInt8>] = [:]
    private(set) var latest: Found?
    /// Why the last marker seen could not be used, if it could not.
    private(set) var skipped: String?

    init(fingerprint: UInt64) {
        self.fingerprint = fingerprint
    }

    /// - Parameters:
    ///   - key: the key after the source's prefix: `<slot>/<chunk>` or `marker`.
    ///   - value: `nil` for a tombstone.
    mutating func apply(key: ArraySlice<UInt8>, value: [UInt8]?) {
        let text = String(decoding: key, as: UTF8.self)
        guard let value else {
            // A tombstone on the marker resets the source (an operator's reset); on a segment, deletes it.
            if text == "marker" { self.latest = nil }
            if text.hasPrefix("seg/") { self.segments.removeValue(forKey: key) }
            return
        }
        var reader = BinaryReader(value)
        do throws(BinaryDecodingError) {
            guard try reader.byte() == Changelog.magic else { return }
            let kind = try reader.byte()
            switch kind {
            case Changelog.chunkKind:
                let parts = text.split(separator: "/")
                guard parts.count == 2, let slot = Int(parts[0]), slot == 0 || slot == 1 else { return }
                let offset = try reader.int64()
                let index = Int(try reader.varint())
                self.chunks[slot][index] = (offset, value[reader.offset...])
            case Changelog.segmentKind:
                guard text.hasPrefix("seg/") else { return }
                self.segments[key] = value[reader.offset...]
            case Changelog.markerKind, Changelog.legacyMarkerKind, Changelog.segmentedMarkerKind:
                guard text == "marker" else { return }
                let legacy = kind == Changelog.legacyMarkerKind
                let offset = try reader.int64()
                let slot = try reader.byte()
                let count = Int(try reader.varint())
                let size = Int(try reader.varint())
                let checksum = try reader.fixed64()
                let fingerprint = try reader.fixed64()
                self.confirm(
                    offset: offset,
                    slot: slot,
                    count: count,
                    size: size,
                    checksum: checksum,
                    legacy: legacy,
                    segmented: kind == Changelog.segmentedMarkerKind,
                    fingerprint
                )
            default:
                return
            }
        } catch {
            self.skipped = "unreadable changelog record: \(error)"
        }
    }

    private mutating func confirm(
        offset: Int64,
        slot: UInt8,
        count: Int,
        size: Int,
        checksum: UInt64,
        legacy: Bool,
        segmented: Bool,
        _ fingerprint: UInt64
    ) {
        guard fingerprint == self.fingerprint else {
            self.skipped = "written with another window grid or state format; starting empty"
            self.latest = nil
            return
        }
        guard slot < 2, count > 0, count <= self.chunks[Int(slot)].count else {
            self.skipped = "checkpoint at offset \(offset) is missing chunks"
            return
        }
        var state: [UInt8] = []
        state.reserveCapacity(size)
        for index in 0..<count {
            guard let chunk = self.chunks[Int(slot)][index], chunk.offset == offset else {
                self.skipped = "checkpoint at offset \(offset) is missing chunk \(index)"
                return
            }
            state.append(contentsOf: chunk.payload)
        }
        let computed = legacy ? Changelog.legacyChecksum(state[...]) : Changelog.checksum(state[...])
        guard state.count == size, computed == checksum else {
            self.skipped = "checkpoint at offset \(offset) fails its checksum"
            return
        }
        if segmented {
            do throws(BinaryDecodingError) {
                state = try self.assemble(state)
            } catch {
                self.skipped = "checkpoint at offset \(offset): \(error.reason)"
                return
            }
        }
        self.latest = Found(offset: offset, slot: slot, state: state)
        self.skipped = nil
    }
}

extension RestoreScan {
    /// The state of a segmented checkpoint: its manifest's segments, each checked against the length and
    /// checksum the manifest gives, spliced into the bytes after the manifest.
    func assemble(_ body: [UInt8]) throws(BinaryDecodingError) -> [UInt8] {
        var reader = BinaryReader(body)
        let count = try reader.count()
        var references: [(position: Int, bytes: ArraySlice<UInt8>)] = []
        references.reserveCapacity(count)
        var position = 0
        for _ in 0..<count {
            position += Int(try reader.count())
            let keyLength = try reader.count()
            let key = body[reader.offset..<reader.offset + keyLength]
            try reader.skip(keyLength)
            let length = Int(try reader.varint())
            let checksum = try reader.fixed64()
            guard let bytes = self.segments[key] else {
                throw reader.error("segment \(String(decoding: key, as: UTF8.self)) is missing")
            }
            guard bytes.count == length, Changelog.checksum(bytes) == checksum else {
                throw reader.error("segment \(String(decoding: key, as: UTF8.self)) fails its checksum")
            }
            references.append((position, bytes))
        }
        let inline = body[reader.offset...]
        guard references.last.map({ $0.position <= inline.count }) ?? true else {
            throw reader.error("segment placed beyond the state")
        }
        return StateSegment.splice(references, into: inline)
    }
}

extension Duration {
    /// Whole nanoseconds, for swift-metrics timers.
    var nanoseconds: Int64 { self.components.seconds * 1_000_000_000 + self.components.attoseconds / 1_000_000_000 }
    /// Whole milliseconds, for logs.
    var wholeMilliseconds: Int64 { self.nanoseconds / 1_000_000 }
}
