/// The level an entity is aggregated at.
public enum EntityLevel: String, Sendable, Hashable, CaseIterable, Comparable {
    case subject, brand

    /// The order of the names (`brand` before `subject`), without comparing strings: keys are sorted often.
    public static func < (lhs: EntityLevel, rhs: EntityLevel) -> Bool { lhs == .brand && rhs == .subject }
}

/// An entity at a level: `subject|post-42`, `brand|acme`.
public struct EntityKey: Sendable, Hashable, Comparable {
    public var level: EntityLevel
    public var entity: String

    public init(_ level: EntityLevel, _ entity: String) {
        self.level = level
        self.entity = entity
    }

    public static func < (lhs: EntityKey, rhs: EntityKey) -> Bool {
        (lhs.level, lhs.entity) < (rhs.level, rhs.entity)
    }

    /// A hash that is the same in every process (unlike `hashValue`), for canonical orders.
    static func canonicalHash(_ key: EntityKey) -> UInt64 {
        stableHash(key.entity) ^ (key.level == .brand ? 0x9E37_79B9_7F4A_7C15 : 0)
    }
}

/// Everything the metric formulas need about one entity in one window; mergeable, so that brand-level
/// partials computed on several input partitions combine into the brand's record.
public struct WindowAggregate: Sendable, Equatable, Codable {
    /// Events per type, indexed by `Event.Kind.rawValue`.
    public var counts = KindCounts()
    public var users: UniqueCounter
    /// Shares that re-shared another (`parent_event_id` present) and shares without a parent.
    public var sharesWithParent = 0
    public var sharesWithoutParent = 0
    /// Shares per cascade depth (subject level).
    public var sharesByDepth: [Int: Int] = [:]
    /// Distinct sharers with a known follower count: the value of their latest share by event time (so
    /// that partials merge to what one pass over the events would give).
    public var sharerFollowers: [String: FollowerCount] = [:]
    public var scored = 0
    /// Sum of scores in units of 10⁻⁹. Sums are kept in fixed point so that they are associative: brand
    /// partials merged in any order give exactly what one pass gives.
    public var sentimentSumNanos: Int64 = 0
    public var positive = 0
    public var neutral = 0
    public var negative = 0
    public var purchases = 0
    /// Purchase amount per currency in millionths (`XXX`, ISO 4217's "no currency", when the event names
    /// none); fixed point for the same reason as ``sentimentSumNanos``.
    public var amountMicros: [String: Int64] = [:]

    /// Sum of sentiment scores.
    public var sentimentSum: Double { Double(self.sentimentSumNanos) / 1e9 }

    /// Purchase amount per currency.
    public var amounts: [String: Double] { self.amountMicros.mapValues { Double($0) / 1e6 } }
    public var purchasers: UniqueCounter
    /// Negative-comment sample and purchasers for crisis detection; `nil` until the window has either.
    public var crisis: CrisisEvidence? = nil
    /// The brand of the latest event that named one (a subject's brand, for the detector's priors).
    public var brand: String? = nil

    /// "New account" for the authenticity assessment: created at most this long before the comment.
    public static let newAccountMillis: Int64 = 30 * 86_400_000

    public init(exactLimit: Int = 1000) {
        self.users = UniqueCounter(exactLimit: exactLimit)
        self.purchasers = UniqueCounter(exactLimit: exactLimit)
    }

    /// Adds one event. `depth` is its cascade depth (shares only); `sentiment` its score (comments only).
    public mutating func add(_ event: Event, userHash: UInt64, depth: Int?, sentiment: Double?) {
        var comment: NegativeComment? = nil
        self.add(event, userHash: userHash, depth: depth, sentiment: sentiment, comment: &comment)
    }

    /// Adds one event; `comment` caches its negative comment (``NegativeComment``, with the text's SimHash and
    /// encoding) for the other entities the event is added to (a subject and its brand), so that it is built
    /// at most once per event.
    mutating func add(
        _ event: Event,
        userHash: UInt64,
        depth: Int?,
        sentiment: Double?,
        comment: inout NegativeComment?
    ) {
        self.counts[Int(event.kind.rawValue)] += 1
        self.users.insert(userHash)
        if let brand = event.brand, brand != self.brand { self.brand = brand }
        switch event.kind {
        case .share:
            if event.parentEventID != nil { self.sharesWithParent += 1 } else { self.sharesWithoutParent += 1 }
            if let depth { self.sharesByDepth[depth, default: 0] += 1 }
            if let followers = event.user?.followers {
                let seen = FollowerCount(followers: followers, at: event.occurredAt)
                if let known = self.sharerFollowers[event.userID], known.at > seen.at { break }
                self.sharerFollowers[event.userID] = seen
            }
        case .comment:
            if let sentiment {
                self.scored += 1
                self.sentimentSumNanos += Int64((sentiment * 1e9).rounded())
                switch SentimentLabel(score: sentiment) {
                case .positive: self.positive += 1
                case .neutral: self.neutral += 1
                case .negative:
                    self.negative += 1
                    if self.crisis == nil { self.crisis = CrisisEvidence() }
                    self.crisis!.addNegative(
                        event,
                        userHash: userHash,
                        newAccountMillis: Self.newAccountMillis,
                        comment: &comment
                    )
                }
            }
        case .purchase:
            self.purchases += 1
            // Amounts up to ~9 × 10¹² per window and currency fit; larger ones saturate rather than trap.
            let micros = Int64(exactly: ((event.amount ?? 0) * 1e6).rounded()) ?? Int64.max / 2
            self.amountMicros[event.currency ?? "XXX", default: 0] &+= micros
            self.purchasers.insert(userHash)
            if self.crisis == nil { self.crisis = CrisisEvidence() }
            self.crisis!.addBuyer(userHash)
        case .like, .view:
            break
        }
    }

    public mutating func merge(_ other: WindowAggregate) {
        for index in self.counts.indices { self.counts[index] += other.counts[index] }
        self.users.merge(other.users)
        self.sharesWithParent += other.sharesWithParent
        self.sharesWithoutParent += other.sharesWithoutParent
        self.sharesByDepth.merge(other.sharesByDepth, uniquingKeysWith: +)
        self.sharerFollowers.merge(other.sharerFollowers) { mine, theirs in theirs.at >= mine.at ? theirs : mine }
        self.scored += other.scored
        self.sentimentSumNanos += other.sentimentSumNanos
        self.positive += other.positive
        self.neutral += other.neutral
        self.negative += other.negative
        self.purchases += other.purchases
        self.amountMicros.merge(other.amountMicros, uniquingKeysWith: &+)
        self.purchasers.merge(other.purchasers)
        if self.brand == nil { self.brand = other.brand }
        if let evidence = other.crisis {
            if self.crisis == nil { self.crisis = CrisisEvidence() }
            self.crisis!.merge(evidence)
        }
    }

    public func count(_ kind: Event.Kind) -> Int { self.counts[Int(kind.rawValue)] }
    public var shares: Int { self.count(.share) }

    /// Approximate heap bytes held by this aggregate.
    public var stateBytes: Int {
        var bytes = 200 + self.users.stateBytes + self.purchasers.stateBytes
        bytes += self.sharesByDepth.capacity * 24 + self.amountMicros.capacity * 32
        bytes += self.sharerFollowers.reduce(0) { $0 + 24 + $1.key.utf8.count }
        bytes += self.crisis?.stateBytes ?? 0
        return bytes
    }
}

/// Events per type, indexed by `Event.Kind.rawValue`, held inline: most aggregates are created for one or
/// a few events (one per entity and window), and an array here cost a heap allocation per aggregate, and
/// another per aggregate changed after each checkpoint's capture (copy on write). Encoded as an array.
public struct KindCounts: Sendable, Equatable, Codable, RandomAccessCollection, MutableCollection {
    private var like = 0
    private var comment = 0
    private var share = 0
    private var purchase = 0
    private var view = 0

    public init() {}

    /// Counts in `Event.Kind.rawValue` order; `values` must hold one per kind.
    public init(_ values: [Int]) {
        precondition(values.count == Event.Kind.allCases.count, "one count per event kind")
        for (index, value) in values.enumerated() { self[index] = value }
    }

    public var startIndex: Int { 0 }
    public var endIndex: Int { 5 }

    public subscript(index: Int) -> Int {
        get {
            switch index {
            case 0: return self.like
            case 1: return self.comment
            case 2: return self.share
            case 3: return self.purchase
            case 4: return self.view
            default: preconditionFailure("no event kind \(index)")
            }
        }
        set {
            switch index {
            case 0: self.like = newValue
            case 1: self.comment = newValue
            case 2: self.share = newValue
            case 3: self.purchase = newValue
            case 4: self.view = newValue
            default: preconditionFailure("no event kind \(index)")
            }
        }
    }

    public init(from decoder: any Decoder) throws {
        let values = try [Int](from: decoder)
        guard values.count == Event.Kind.allCases.count else {
            throw DecodingError.dataCorrupted(
                DecodingError.Context(codingPath: decoder.codingPath, debugDescription: "\(values.count) event counts")
            )
        }
        self.init(values)
    }

    public func encode(to encoder: any Encoder) throws {
        try Array(self).encode(to: encoder)
    }
}

/// A sharer's follower count and the event time it was reported at.
public struct FollowerCount: Sendable, Equatable, Codable {
    public var followers: Int64
    public var at: Int64

    public init(followers: Int64, at: Int64) {
        self.followers = followers
        self.at = at
    }
}

/// Cascade depths of a subject's recent shares, bounded: at most `capacity` shares are remembered, the
/// oldest forgotten first. A share whose parent is unknown or forgotten has depth 1.
///
/// The shares and their depths sit in a ring in the order they came; a dictionary maps each id to its slot.
/// A checkpoint writes the ring as it is, without a lookup per share (it was one hashed string lookup per
/// remembered share per checkpoint, a visible part of a live run's profile).
///
/// Share ids are remembered as 64-bit hashes (``stableHash(_:)``, as the deduplicator does): a hash
/// table of integers instead of strings (no string hashing or comparison per lookup, no heap string per
/// share for ids longer than 15 bytes) and 8 bytes per share in checkpoints. Two ids of one subject's
/// last 4 096 shares collide with a chance of about 10⁻¹²; the price would be one share's depth.
///
/// The ring is kept in blocks of ``blockSize`` shares. A full block is a ``SealedBlock`` as long as it does
/// not change (a new identity each time it does: a share overwritten as the ring wraps, or a depth
/// updated), so a checkpoint stores it once and names it afterwards, as it does the deduplicator's blocks;
/// and a checkpoint's capture shares the blocks, so the next share recorded copies one block, not the ring.
public struct CascadeTracker: Sendable {
    static let blockSize = 64

    /// Up to `blockSize` shares, two words each: the id hash, then the depth. Grows as it is filled.
    struct Block: Sendable {
        /// The block's identity as a ``SealedBlock`` while it is full and unchanged since it got it.
        var id: UInt64?
        var words: [UInt64] = []

        func id(at offset: Int) -> UInt64 { self.words[2 * offset] }

        func depth(at offset: Int) -> UInt64 { self.words[2 * offset + 1] }

        mutating func set(_ offset: Int, id: UInt64, depth: UInt64) {
            if 2 * offset == self.words.count {
                self.words.append(id)
                self.words.append(depth)
            } else {
                self.words[2 * offset] = id
                self.words[2 * offset + 1] = depth
            }
        }

        mutating func setDepth(_ offset: Int, _ depth: UInt64) { self.words[2 * offset + 1] = depth }
    }

    public let capacity: Int
    /// Share id hash → its slot in the ring.
    private var slots: [UInt64: Int] = [:]
    /// The ring, `slots.count` shares (at most `capacity`).
    private var blocks: [Block] = []
    /// The oldest share's slot once the ring is full (0 until then).
    private var head = 0

    public init(capacity: Int = 4096) {
        self.capacity = capacity
    }

    /// Records a share and returns its depth.
    public mutating func record(shareID: String, parentID: String?) -> Int {
        self.record(share: stableHash(shareID), parent: parentID.map { stableHash($0) })
    }

    mutating func record(share shareID: UInt64, parent parentID: UInt64?) -> Int {
        let depth = (parentID.flatMap { self.slots[$0] }.map { self.depth(at: $0) } ?? 0) &+ 1
        if let slot = self.slots[shareID] {
            self.change(slot) { $0.setDepth($1, depth) }
        } else if self.slots.count < self.capacity {
            let slot = self.slots.count
            self.slots[shareID] = slot
            if slot % Self.blockSize == 0 { self.blocks.append(Block()) }
            self.change(slot) { $0.set($1, id: shareID, depth: depth) }
            if (slot + 1) % Self.blockSize == 0 { self.seal(slot / Self.blockSize) }
        } else {
            self.slots.removeValue(forKey: self.blocks[self.head / Self.blockSize].id(at: self.head % Self.blockSize))
            self.change(self.head) { $0.set($1, id: shareID, depth: depth) }
            self.slots[shareID] = self.head
            self.head = (self.head + 1) % self.capacity
        }
        return Int(depth)
    }

    private func depth(at slot: Int) -> UInt64 {
        self.blocks[slot / Self.blockSize].depth(at: slot % Self.blockSize)
    }

    /// Changes the block holding `slot`; a full block gets a new identity, since its content changed.
    private mutating func change(_ slot: Int, _ body: (inout Block, Int) -> Void) {
        let index = slot / Self.blockSize
        body(&self.blocks[index], slot % Self.blockSize)
        if self.blocks[index].id != nil { self.seal(index) }
    }

    private mutating func seal(_ index: Int) {
        self.blocks[index].id = SealedBlock.nextID()
    }

    public var count: Int { self.slots.count }
}

// MARK: - Binary state

extension EntityLevel {
    /// The level as one byte of the binary format.
    var code: UInt8 {
        switch self {
        case .subject: return 0
        case .brand: return 1
        }
    }

    init(reading reader: inout BinaryReader) throws(BinaryDecodingError) {
        switch try reader.byte() {
        case 0: self = .subject
        case 1: self = .brand
        case let other: throw reader.error("entity level \(other)")
        }
    }
}

extension EntityKey {
    func write(to writer: inout BinaryWriter) {
        writer.byte(self.level.code)
        writer.string(self.entity)
    }

    init(reading reader: inout BinaryReader) throws(BinaryDecodingError) {
        let level = try EntityLevel(reading: &reader)
        self.init(level, try reader.string())
    }
}

extension CascadeTracker {
    /// Appends the tracker: its capacity, the ring's head and size, then the ring's shares in ring order,
    /// each as its id hash and depth (fixed 8 bytes each), a full block at a time (each a ``SealedBlock``).
    func write(to writer: inout BinaryWriter) {
        writer.varint(UInt64(self.capacity))
        writer.varint(UInt64(self.head))
        writer.varint(UInt64(self.slots.count))
        for block in self.blocks {
            if let id = block.id {
                writer.sealed(SealedBlock(id: id, words: block.words))
            } else {
                writer.fixed64s(block.words)
            }
        }
    }

    /// - Parameter hashed: the layout above (window engine state version 2); version 1 wrote each share's
    ///   id as a string and its depth, and the ids are hashed as they are read.
    init(reading reader: inout BinaryReader, hashed: Bool = true) throws(BinaryDecodingError) {
        let capacity = try reader.varint()
        let head = try reader.varint()
        let count = try reader.count()
        // The ring is filled in order (head 0) before it wraps, and the head stays within it.
        guard capacity > 0, capacity <= UInt64(Int.max), UInt64(count) <= capacity,
            count == capacity ? head < capacity : head == 0
        else { throw reader.error("cascade ring of \(count) shares, capacity \(capacity), head \(head)") }
        self.init(capacity: Int(capacity))
        self.slots.reserveCapacity(count)
        self.blocks.reserveCapacity((count + Self.blockSize - 1) / Self.blockSize)
        for slot in 0..<count {
            let id = hashed ? try reader.fixed64() : stableHash(try reader.string())
            let depth = hashed ? try reader.fixed64() : UInt64(clamping: try reader.int())
            guard depth >= 1, depth <= UInt64(Int.max) else { throw reader.error("cascade depth \(depth)") }
            guard self.slots.updateValue(slot, forKey: id) == nil else {
                throw reader.error("share remembered twice in a cascade")
            }
            let (index, offset) = slot.quotientAndRemainder(dividingBy: Self.blockSize)
            if offset == 0 { self.blocks.append(Block()) }
            self.blocks[index].set(offset, id: id, depth: depth)
            if offset == Self.blockSize - 1 { self.seal(index) }
        }
        self.head = Int(head)
    }
}
