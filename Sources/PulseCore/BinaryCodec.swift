import Synchronization

/// A compact binary format for state that leaves the process: brand partials on the repartition topic
/// (and checkpoints). Integers are LEB128 varints (signed ones zigzag-encoded), hashes fixed 8 bytes
/// little-endian, strings a varint length and UTF-8, optionals a presence byte, collections a varint count.
///
/// Written by hand rather than through `Codable` with `JSONEncoder`: the profile of the full pipeline had
/// JSON encoding and decoding of brand partials at a quarter of all CPU time (docs/performance.md).
public struct BinaryWriter: Sendable {
    public private(set) var bytes: [UInt8] = []
    /// When set, ``sealed(_:)`` (and ``sealed(_:_:)``, for encodings of 256 bytes or more) records a
    /// ``StateSegment`` in ``segments`` instead of copying the bytes, so that a checkpoint can store what
    /// did not change once, and reference it afterwards.
    public var segmenting = false
    /// The segments recorded, in order; the state's bytes are ``bytes`` with each one spliced in at its
    /// ``StateSegment/position`` (``StateSegment/splice(_:into:)``).
    public private(set) var segments: [StateSegment] = []
    /// The largest segment ``sealed(_:_:)`` makes of an encoding: what one changelog record holds
    /// (``Changelog``'s chunks are as large).
    public var maximumSegmentBytes = 512 * 1024

    public init(capacity: Int = 256) {
        self.bytes.reserveCapacity(capacity)
    }

    public mutating func byte(_ value: UInt8) { self.bytes.append(value) }

    public mutating func varint(_ value: UInt64) {
        var value = value
        while value >= 0x80 {
            self.bytes.append(UInt8(truncatingIfNeeded: value) | 0x80)
            value >>= 7
        }
        self.bytes.append(UInt8(value))
    }

    public mutating func int(_ value: Int64) { self.varint(UInt64(bitPattern: (value << 1) ^ (value >> 63))) }
    public mutating func int(_ value: Int) { self.int(Int64(value)) }

    public mutating func fixed64(_ value: UInt64) {
        withUnsafeBytes(of: value.littleEndian) { self.bytes.append(contentsOf: $0) }
    }

    /// Many ``fixed64(_:)`` values at once (one copy on a little-endian machine).
    public mutating func fixed64s(_ values: [UInt64]) {
        #if _endian(little)
        values.withUnsafeBytes { self.bytes.append(contentsOf: $0) }
        #else
        for value in values { self.fixed64(value) }
        #endif
    }

    /// The values of `values` other than 0, each as ``fixed64(_:)`` writes it (a table whose empty slots are 0).
    ///
    /// All of them are copied at once, then the nonzero ones moved down over the zeros and the rest cut off.
    /// Every changed counter is written at each commit: a call to ``fixed64(_:)`` per value took 1.3 % of a
    /// live daemon's CPU, and zero-filling room and storing into it 1.5 %, against 0.6 % for the one copy of the
    /// sorted arrays these tables replaced.
    public mutating func fixed64s(skippingZeros values: [UInt64]) {
        #if _endian(little)
        let start = self.bytes.count
        values.withUnsafeBytes { self.bytes.append(contentsOf: $0) }
        let end = self.bytes.withUnsafeMutableBytes { bytes in
            var read = start
            var write = start
            // Without a branch per word (zeros and values alternate at random in a table): every word is stored,
            // and only a nonzero one is kept by moving on past it. `write` never passes `read`.
            while read < bytes.count {
                let word = bytes.loadUnaligned(fromByteOffset: read, as: UInt64.self)
                bytes.storeBytes(of: word, toByteOffset: write, as: UInt64.self)
                write &+= word == 0 ? 0 : 8
                read &+= 8
            }
            return write
        }
        self.bytes.removeLast(self.bytes.count - end)
        #else
        for value in values where value != 0 { self.fixed64(value) }
        #endif
    }

    /// A sealed block as ``fixed64s(_:)`` would write it, or, when ``segmenting``, as a segment of its own.
    public mutating func sealed(_ block: SealedBlock) {
        if self.segmenting {
            self.segments.append(StateSegment(id: block.id, position: self.bytes.count, words: block.words))
        } else {
            self.fixed64s(block.words)
        }
    }

    /// A value's encoding through its ``SealedEncoding``: written once for as long as the value does not
    /// change, and, when ``segmenting`` and at least ``SealedEncoding/minimumSegmentBytes`` long, segments
    /// of its own (the changelog stores them once, and later checkpoints only name them): one per
    /// ``maximumSegmentBytes``, so that each fits in one record.
    ///
    /// - Parameter encode: writes the value, as it would be written inline; called only when `sealed` has
    ///   no bytes yet.
    public mutating func sealed(_ sealed: SealedEncoding, _ encode: (inout BinaryWriter) -> Void) {
        let bytes = sealed.bytes {
            var writer = BinaryWriter(capacity: 1024)
            encode(&writer)
            return writer.bytes
        }
        guard self.segmenting && bytes.count >= SealedEncoding.minimumSegmentBytes else {
            self.bytes.append(contentsOf: bytes)
            return
        }
        // Pieces at the same position: spliced back one after the other.
        for (index, id) in sealed.pieces(of: self.maximumSegmentBytes).enumerated() {
            let lower = index * self.maximumSegmentBytes
            let piece = bytes[lower..<min(bytes.count, lower + self.maximumSegmentBytes)]
            self.segments.append(StateSegment(id: id, position: self.bytes.count, content: .bytes(piece)))
        }
    }

    public mutating func bool(_ value: Bool) { self.bytes.append(value ? 1 : 0) }

    /// Bytes as they are, with no length.
    public mutating func append(contentsOf bytes: some Collection<UInt8>) { self.bytes.append(contentsOf: bytes) }

    public mutating func string(_ value: String) {
        // Native strings hand out their bytes without a copy of the string (checkpoints write every sampled
        // comment's strings, each time).
        let written: Void? = value.utf8.withContiguousStorageIfAvailable { utf8 in
            self.varint(UInt64(utf8.count))
            self.bytes.append(contentsOf: utf8)
        }
        guard written == nil else { return }
        var copy = value
        copy.withUTF8 { utf8 in
            self.varint(UInt64(utf8.count))
            self.bytes.append(contentsOf: utf8)
        }
    }

    public mutating func optional<T>(_ value: T?, _ write: (inout BinaryWriter, T) -> Void) {
        guard let value else {
            self.bytes.append(0)
            return
        }
        self.bytes.append(1)
        write(&self, value)
    }
}

/// Values that never change once collected (a full block of the deduplicator's ids, or of a cascade's
/// shares), with an identity no other block of this process shares, so that a checkpoint can tell it
/// already stored this block. A holder that changes a block in place gives it a new identity.
public struct SealedBlock: Sendable {
    public let id: UInt64
    public let words: [UInt64]

    public init(_ words: [UInt64]) {
        self.init(id: Self.nextID(), words: words)
    }

    /// A block whose identity was taken before (``nextID()``) by a holder that changes it in place.
    public init(id: UInt64, words: [UInt64]) {
        self.id = id
        self.words = words
    }

    /// An identity no block of this process had before.
    public static func nextID() -> UInt64 { sealedBlockIDs.add(1, ordering: .relaxed).newValue }
}

/// The encoding of a value that changes now and then but is checkpointed far more often (a crisis
/// detector changes when windows close, once a window step, and is checkpointed at every commit): the
/// bytes are computed once per version of the value, and the version's identity lets a checkpoint store
/// them once (a segment) and name them afterwards.
///
/// The value holds one and shares it with its copies (a checkpoint's capture is a copy). Before it
/// changes, the value calls ``renewed(_:)``: a copy taken earlier keeps the old encoding and identity,
/// the value gets new ones. So an identity always means the bytes of one version.
public final class SealedEncoding: Sendable {
    /// Shorter encodings are written inline: a segment's record and its line in each manifest (a key of
    /// 30–40 bytes, length, checksum, position) would cost more than the bytes.
    public static let minimumSegmentBytes = 256

    /// The bytes, and the identities of their pieces once a segmenting writer asked for them.
    private struct Encoded {
        var bytes: [UInt8]
        /// One per piece of `pieceBytes` (the last may be shorter); never shared by another encoding or
        /// ``SealedBlock`` of this process.
        var pieces: [UInt64] = []
        var pieceBytes = 0
    }

    private let encoded = Mutex<Encoded?>(nil)
    /// Set once the bytes are stored: read at every change of the value (per event, for windows), without
    /// the lock.
    private let done = Atomic<Bool>(false)

    public init() {}

    /// The bytes, encoded by `encode` on first use. Two copies encoding at once both encode (the same
    /// bytes); the first to finish is kept.
    public func bytes(_ encode: () -> [UInt8]) -> [UInt8] {
        if let encoded = self.encoded.withLock({ $0 }) { return encoded.bytes }
        let bytes = encode()
        return self.encoded.withLock { stored in
            if let stored { return stored.bytes }
            stored = Encoded(bytes: bytes)
            self.done.store(true, ordering: .releasing)
            return bytes
        }
    }

    /// The identities of the bytes' pieces of at most `pieceBytes` each (call after ``bytes(_:)``): the
    /// same for as long as this version lives.
    func pieces(of pieceBytes: Int) -> [UInt64] {
        self.encoded.withLock { encoded in
            guard var current = encoded else { preconditionFailure("pieces of an encoding not computed yet") }
            if current.pieceBytes != pieceBytes || current.pieces.isEmpty {
                // A new cut (only ever one in a process: the writers' piece size is a constant) gets new
                // identities, so that an identity never names two different runs of bytes.
                let count = max(1, (current.bytes.count + pieceBytes - 1) / pieceBytes)
                current.pieces = (0..<count).map { _ in SealedBlock.nextID() }
                current.pieceBytes = pieceBytes
                encoded = current
            }
            return current.pieces
        }
    }

    /// Whether the bytes were computed: only then may the identities have left the process.
    var isEncoded: Bool { self.done.load(ordering: .acquiring) }

    /// Call before changing the value that holds `sealed`: keeps it when nothing else holds it and it was
    /// never encoded (its identities are unused), otherwise replaces it.
    public static func renewed(_ sealed: inout SealedEncoding) {
        if isKnownUniquelyReferenced(&sealed) && !sealed.isEncoded { return }
        sealed = SealedEncoding()
    }
}

/// Identities of ``SealedBlock``s: process-wide, so that no two blocks (of any partition, before or after a
/// restore) ever share one.
private let sealedBlockIDs = Atomic<UInt64>(0)

/// A sealed block that a ``BinaryWriter`` in ``BinaryWriter/segmenting`` mode left out of its bytes.
public struct StateSegment: Sendable {
    /// What the segment holds: a ``SealedBlock``'s words, or the bytes of a ``SealedEncoding``.
    public enum Content: Sendable {
        case words([UInt64])
        case bytes(ArraySlice<UInt8>)
    }

    /// The block's identity (``SealedBlock/id``): the same id always means the same content.
    public let id: UInt64
    /// Where the block's bytes belong: before the inline byte at this index.
    public let position: Int
    public let content: Content

    public init(id: UInt64, position: Int, words: [UInt64]) {
        self.init(id: id, position: position, content: .words(words))
    }

    public init(id: UInt64, position: Int, content: Content) {
        self.id = id
        self.position = position
        self.content = content
    }

    /// How many bytes the segment stands for.
    public var byteCount: Int {
        switch self.content {
        case .words(let words): return words.count * 8
        case .bytes(let bytes): return bytes.count
        }
    }

    /// The bytes, without a copy for an encoding's.
    public var slice: ArraySlice<UInt8> {
        if case .bytes(let bytes) = self.content { return bytes }
        return self.bytes[...]
    }

    /// The block's bytes, as ``BinaryWriter/fixed64s(_:)`` writes them (an encoding's, as they are).
    public var bytes: [UInt8] {
        switch self.content {
        case .words(let words):
            var writer = BinaryWriter(capacity: words.count * 8)
            writer.fixed64s(words)
            return writer.bytes
        case .bytes(let bytes):
            return Array(bytes)
        }
    }

    /// The state's bytes: `inline` with each segment's bytes inserted at its position (segments in order).
    public static func splice(_ segments: [StateSegment], into inline: [UInt8]) -> [UInt8] {
        Self.splice(segments.map { ($0.position, $0.slice) }, into: inline[...])
    }

    /// `inline` with each run of bytes inserted before the inline byte at its position (positions in
    /// ascending order, each at most `inline.count`).
    public static func splice(
        _ runs: [(position: Int, bytes: ArraySlice<UInt8>)],
        into inline: ArraySlice<UInt8>
    ) -> [UInt8] {
        var state: [UInt8] = []
        state.reserveCapacity(inline.count + runs.reduce(0) { $0 + $1.bytes.count })
        var copied = inline.startIndex
        for run in runs {
            let position = inline.startIndex + run.position
            state.append(contentsOf: inline[copied..<position])
            state.append(contentsOf: run.bytes)
            copied = position
        }
        state.append(contentsOf: inline[copied...])
        return state
    }
}

/// Input that does not follow the format (truncated, or not written by ``BinaryWriter``).
public struct BinaryDecodingError: Error, Equatable, CustomStringConvertible {
    public var offset: Int
    public var reason: String

    public init(offset: Int, reason: String) {
        self.offset = offset
        self.reason = reason
    }

    public var description: String { "binary record: \(self.reason) at byte \(self.offset)" }
}

/// Reads what ``BinaryWriter`` wrote.
public struct BinaryReader {
    private let bytes: [UInt8]
    public private(set) var offset: Int

    public init(_ bytes: [UInt8], offset: Int = 0) {
        self.bytes = bytes
        self.offset = offset
    }

    public var isAtEnd: Bool { self.offset >= self.bytes.count }

    private func failure(_ reason: String) -> BinaryDecodingError {
        BinaryDecodingError(offset: self.offset, reason: reason)
    }

    public mutating func byte() throws(BinaryDecodingError) -> UInt8 {
        guard self.offset < self.bytes.count else { throw self.failure("unexpected end") }
        defer { self.offset += 1 }
        return self.bytes[self.offset]
    }

    public mutating func varint() throws(BinaryDecodingError) -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let byte = try self.byte()
            guard shift < 64 else { throw self.failure("varint too long") }
            result |= UInt64(byte & 0x7F) << shift
            if byte < 0x80 { return result }
            shift += 7
        }
    }

    public mutating func int64() throws(BinaryDecodingError) -> Int64 {
        let raw = try self.varint()
        return Int64(bitPattern: (raw >> 1) ^ (0 &- (raw & 1)))
    }

    public mutating func int() throws(BinaryDecodingError) -> Int {
        let value = try self.int64()
        guard let result = Int(exactly: value) else { throw self.failure("integer out of range") }
        return result
    }

    /// A count of elements that follow, each at least one byte long (so a corrupt count cannot make the
    /// caller reserve gigabytes).
    public mutating func count() throws(BinaryDecodingError) -> Int {
        let value = try self.varint()
        guard value <= UInt64(self.bytes.count - self.offset) else { throw self.failure("count beyond the input") }
        return Int(value)
    }

    public mutating func fixed64() throws(BinaryDecodingError) -> UInt64 {
        guard self.offset + 8 <= self.bytes.count else { throw self.failure("unexpected end") }
        var value: UInt64 = 0
        for index in 0..<8 { value |= UInt64(self.bytes[self.offset + index]) << UInt64(8 * index) }
        self.offset += 8
        return value
    }

    public mutating func bool() throws(BinaryDecodingError) -> Bool {
        switch try self.byte() {
        case 0: return false
        case 1: return true
        default: throw self.failure("not a boolean")
        }
    }

    public mutating func string() throws(BinaryDecodingError) -> String {
        let length = try self.count()
        let range = self.offset..<(self.offset + length)
        self.offset += length
        guard let text = String(validating: self.bytes[range], as: UTF8.self) else {
            throw self.failure("invalid UTF-8")
        }
        return text
    }

    public mutating func optional<T>(
        _ read: (inout BinaryReader) throws(BinaryDecodingError) -> T
    ) throws(BinaryDecodingError) -> T? {
        switch try self.byte() {
        case 0: return nil
        case 1: return try read(&self)
        default: throw self.failure("not an optional marker")
        }
    }
}

// MARK: - Helpers for processing state

extension BinaryWriter {
    /// A `Double`, bit for bit (its IEEE 754 bit pattern as ``fixed64(_:)``).
    mutating func double(_ value: Double) { self.fixed64(value.bitPattern) }

    /// An optional signed integer: a presence byte, then the zigzag varint.
    mutating func optionalInt(_ value: Int64?) {
        guard let value else {
            self.byte(0)
            return
        }
        self.byte(1)
        self.int(value)
    }
}

extension BinaryReader {
    /// An error at the current offset.
    public func error(_ reason: String) -> BinaryDecodingError {
        BinaryDecodingError(offset: self.offset, reason: reason)
    }

    /// A copy of bytes already read.
    func bytes(_ range: Range<Int>) -> [UInt8] {
        precondition(range.upperBound <= self.offset, "only bytes already read")
        return Array(self.bytes[range])
    }

    /// Steps over `count` bytes.
    public mutating func skip(_ count: Int) throws(BinaryDecodingError) {
        guard count >= 0, count <= self.bytes.count - self.offset else { throw self.error("unexpected end") }
        self.offset += count
    }

    /// Reads the format version that opens a state and checks it is `expected`.
    mutating func version(_ expected: UInt8, of what: String) throws(BinaryDecodingError) {
        let version = try self.byte()
        guard version == expected else { throw self.error("\(what) state version \(version), expected \(expected)") }
    }

    mutating func double() throws(BinaryDecodingError) -> Double { Double(bitPattern: try self.fixed64()) }

    mutating func optionalInt64() throws(BinaryDecodingError) -> Int64? {
        switch try self.byte() {
        case 0: return nil
        case 1: return try self.int64()
        default: throw self.error("not an optional marker")
        }
    }

    /// A counter that is never negative.
    mutating func counter() throws(BinaryDecodingError) -> Int {
        let value = try self.int()
        guard value >= 0 else { throw self.error("negative counter") }
        return value
    }
}

extension BinaryWriter {
    /// Appends the number of entries of `dictionary`, then each with `body`, in ascending key order: equal
    /// dictionaries give equal bytes whatever their iteration order. Without a sorted copy when there is
    /// at most one entry, as in most aggregates (every open aggregate is written at each checkpoint).
    mutating func entries<Key: Comparable, Value>(
        _ dictionary: [Key: Value],
        _ body: (inout BinaryWriter, Key, Value) -> Void
    ) {
        self.varint(UInt64(dictionary.count))
        if dictionary.count <= 1 {
            for (key, value) in dictionary { body(&self, key, value) }
        } else {
            for (key, value) in dictionary.sorted(by: { $0.key < $1.key }) { body(&self, key, value) }
        }
    }
}

extension WindowAggregate {
    /// Appends the aggregate in the binary format.
    public func write(to writer: inout BinaryWriter) {
        writer.varint(UInt64(self.counts.count))
        for count in self.counts { writer.int(count) }
        self.users.write(to: &writer)
        writer.int(self.sharesWithParent)
        writer.int(self.sharesWithoutParent)
        writer.entries(self.sharesByDepth) { writer, depth, count in
            writer.int(depth)
            writer.int(count)
        }
        writer.entries(self.sharerFollowers) { writer, user, seen in
            writer.string(user)
            writer.int(seen.followers)
            writer.int(seen.at)
        }
        writer.int(self.scored)
        writer.int(self.sentimentSumNanos)
        writer.int(self.positive)
        writer.int(self.neutral)
        writer.int(self.negative)
        writer.int(self.purchases)
        writer.entries(self.amountMicros) { writer, currency, micros in
            writer.string(currency)
            writer.int(micros)
        }
        self.purchasers.write(to: &writer)
        writer.optional(self.crisis) { writer, crisis in crisis.write(to: &writer) }
        writer.optional(self.brand) { $0.string($1) }
    }

    /// Reads an aggregate written by ``write(to:)``.
    public init(reading reader: inout BinaryReader) throws(BinaryDecodingError) {
        var counts: [Int] = []
        for _ in 0..<(try reader.count()) { counts.append(try reader.int()) }
        guard counts.count == Event.Kind.allCases.count else {
            throw BinaryDecodingError(offset: reader.offset, reason: "\(counts.count) event counts")
        }
        self.init(exactLimit: 0)
        self.counts = KindCounts(counts)
        self.users = try UniqueCounter(reading: &reader)
        self.sharesWithParent = try reader.int()
        self.sharesWithoutParent = try reader.int()
        for _ in 0..<(try reader.count()) {
            let depth = try reader.int()
            self.sharesByDepth[depth] = try reader.int()
        }
        for _ in 0..<(try reader.count()) {
            let user = try reader.string()
            self.sharerFollowers[user] = FollowerCount(followers: try reader.int64(), at: try reader.int64())
        }
        self.scored = try reader.int()
        self.sentimentSumNanos = try reader.int64()
        self.positive = try reader.int()
        self.neutral = try reader.int()
        self.negative = try reader.int()
        self.purchases = try reader.int()
        for _ in 0..<(try reader.count()) {
            let currency = try reader.string()
            self.amountMicros[currency] = try reader.int64()
        }
        self.purchasers = try UniqueCounter(reading: &reader)
        self.crisis = try reader.optional { (reader: inout BinaryReader) throws(BinaryDecodingError) in
            try CrisisEvidence(reading: &reader)
        }
        self.brand = try reader.optional { (reader: inout BinaryReader) throws(BinaryDecodingError) in
            try reader.string()
        }
    }
}

extension CrisisEvidence {
    public func write(to writer: inout BinaryWriter) {
        writer.varint(UInt64(self.comments.count))
        // Each comment's bytes as they were encoded when it entered the sample.
        for comment in self.comments { writer.append(contentsOf: comment.encoded) }
        writer.varint(UInt64(self.buyers.count))
        writer.fixed64s(self.buyers)
        writer.int(self.newAccounts)
        writer.int(self.withAccountAge)
    }

    public init(reading reader: inout BinaryReader) throws(BinaryDecodingError) {
        self.init()
        for _ in 0..<(try reader.count()) { self.comments.append(try NegativeComment(reading: &reader)) }
        for _ in 0..<(try reader.count()) { self.buyers.append(try reader.fixed64()) }
        self.newAccounts = try reader.int()
        self.withAccountAge = try reader.int()
    }
}
