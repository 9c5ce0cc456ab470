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
/// Full checkpoints rather than per-entity deltas: a restore needs only the latest one, so the topic
/// stays small without relying on compaction (the embedded broker does not compact, and keeps about
/// 5 MiB per partition), and the restore reads at most two checkpoints' worth of bytes. The price is that
/// each checkpoint costs as much as the partition's state; docs/operations.md gives the numbers.
public final class Changelog: Sendable {
    /// Largest chunk value; below librdkafka's default `message.max.bytes` with room for headers.
    public static let chunkBytes = 512 * 1024
    static let magic: UInt8 = 0xC5
    static let chunkKind: UInt8 = 1
    /// A marker whose checksum is ``checksum(_:)``.
    static let markerKind: UInt8 = 3
    /// A marker of versions before 2026-11-27, checksummed byte by byte (``legacyChecksum(_:)``): still read.
    static let legacyMarkerKind: UInt8 = 2

    /// One partition's encoded state and the input offset it reflects (the next offset to process).
    public struct Snapshot: Sendable {
        public var source: TopicPartition
        public var offset: Int64
        public var state: [UInt8]

        public init(source: TopicPartition, offset: Int64, state: [UInt8]) {
            self.source = source
            self.offset = offset
            self.state = state
        }
    }

    /// A checkpoint whose chunks are queued; its marker follows once they are delivered.
    public struct Pending: Sendable {
        var source: TopicPartition
        var offset: Int64
        var slot: UInt8
        var chunks: Int
        var checksum: UInt64
        var bytes: Int
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

    public init(
        topic: String,
        partitions: Int32,
        fingerprint: UInt64,
        producer: KafkaProducer,
        client: KafkaClientConfiguration,
        logger: Logger
    ) throws(KafkaError) {
        self.topic = topic
        self.partitions = max(1, partitions)
        self.fingerprint = fingerprint
        self.producer = producer
        self.reader = try PartitionReader(client: client, logger: logger)
        self.logger = logger
    }

    /// The changelog partition holding `source`'s checkpoints.
    public func changelogPartition(of source: TopicPartition) -> Int32 {
        source.partition % self.partitions
    }

    static func keyPrefix(_ source: TopicPartition) -> String { "\(source.topic)/\(source.partition)/" }

    /// Queues the chunks of each snapshot (inside the current transaction, if any).
    public func write(_ snapshots: [Snapshot]) throws(KafkaError) -> [Pending] {
        var pending: [Pending] = []
        for snapshot in snapshots {
            let slot: UInt8 = self.confirmedSlots.withLock { ($0[snapshot.source] ?? 1) == 0 ? 1 : 0 }
            let chunkCount = max(1, (snapshot.state.count + Self.chunkBytes - 1) / Self.chunkBytes)
            let prefix = Self.keyPrefix(snapshot.source)
            let partition = self.changelogPartition(of: snapshot.source)
            for index in 0..<chunkCount {
                let lower = index * Self.chunkBytes
                let upper = min(snapshot.state.count, lower + Self.chunkBytes)
                var writer = BinaryWriter(capacity: upper - lower + 24)
                writer.byte(Self.magic)
                writer.byte(Self.chunkKind)
                writer.int(snapshot.offset)
                writer.varint(UInt64(index))
                var value = writer.bytes
                value.append(contentsOf: snapshot.state[lower..<upper])
                try self.producer.send(
                    ProducerRecord(
                        topic: self.topic,
                        partition: partition,
                        key: Array("\(prefix)\(slot)/\(index)".utf8),
                        value: value
                    )
                )
            }
            pending.append(
                Pending(
                    source: snapshot.source,
                    offset: snapshot.offset,
                    slot: slot,
                    chunks: chunkCount,
                    checksum: Self.checksum(snapshot.state[...]),
                    bytes: snapshot.state.count
                )
            )
        }
        return pending
    }

    /// Queues the markers of checkpoints whose chunks (and outputs) were delivered.
    public func confirm(_ pending: [Pending]) throws(KafkaError) {
        for checkpoint in pending {
            var writer = BinaryWriter(capacity: 48)
            writer.byte(Self.magic)
            writer.byte(Self.markerKind)
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
        }
    }

    /// Forgets which slot a source used (it moved to another member, which continues from the marker).
    public func forget(_ sources: [TopicPartition]) {
        self.confirmedSlots.withLock { slots in
            for source in sources { slots.removeValue(forKey: source) }
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
            // A tombstone on the marker resets the source (an operator's reset); on a chunk, forgets it.
            if text == "marker" { self.latest = nil }
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
            case Changelog.markerKind, Changelog.legacyMarkerKind:
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
        self.latest = Found(offset: offset, slot: slot, state: state)
        self.skipped = nil
    }
}

extension Duration {
    /// Whole nanoseconds, for swift-metrics timers.
    var nanoseconds: Int64 { self.components.seconds * 1_000_000_000 + self.components.attoseconds / 1_000_000_000 }
    /// Whole milliseconds, for logs.
    var wholeMilliseconds: Int64 { self.nanoseconds / 1_000_000 }
}
