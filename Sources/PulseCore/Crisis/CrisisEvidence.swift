/// One negative comment, as much as the authenticity assessment and the alert's explanation need.
///
/// A sampled comment lives for many checkpoints (every commit writes each open window's sample, up to 64
/// comments per entity) but is read field by field only when an alert explains itself. So it is kept as the
/// bytes a checkpoint writes (``CrisisEvidence/write(to:)``), encoded once when it enters a sample: writing a
/// sample copies one buffer per comment instead of encoding four strings per comment per commit (touching each
/// string's storage was 6 % of a live daemon's CPU, most of it cache misses in `swift_retain`). The fields
/// the detector reads at every evaluation, and the key the sample is ordered by, are kept as numbers beside
/// the bytes; the strings are read back from them when asked for.
public struct NegativeComment: Sendable, Equatable {
    /// Hash of the event id: the sample keeps the comments with the smallest keys (a bottom-k sample), so
    /// partials merged in any order keep the same comments.
    public let sampleKey: UInt64
    public let user: UInt64
    public let at: Int64
    /// 64-bit SimHash of the text's character shingles: near-duplicates differ in few bits.
    public let simhash: UInt64
    /// `user.created_at` lies within `newAccountDays` before the comment; `nil` when not given.
    public let newAccount: Bool?
    /// The comment in the binary format: sample key, event id, subject, user, time, SimHash, new account,
    /// excerpt, language.
    let encoded: [UInt8]

    public init(
        sampleKey: UInt64,
        eventID: String,
        subject: String,
        user: UInt64,
        at: Int64,
        simhash: UInt64,
        newAccount: Bool?,
        excerpt: String,
        lang: String?
    ) {
        var writer = BinaryWriter(
            capacity: 48 + eventID.utf8.count + subject.utf8.count + excerpt.utf8.count + (lang?.utf8.count ?? 0)
        )
        writer.fixed64(sampleKey)
        writer.string(eventID)
        writer.string(subject)
        writer.fixed64(user)
        writer.int(at)
        writer.fixed64(simhash)
        writer.optional(newAccount) { $0.bool($1) }
        writer.string(excerpt)
        writer.optional(lang) { $0.string($1) }
        self.init(sampleKey: sampleKey, user: user, at: at, simhash: simhash, newAccount: newAccount, writer.bytes)
    }

    private init(sampleKey: UInt64, user: UInt64, at: Int64, simhash: UInt64, newAccount: Bool?, _ encoded: [UInt8]) {
        self.sampleKey = sampleKey
        self.user = user
        self.at = at
        self.simhash = simhash
        self.newAccount = newAccount
        self.encoded = encoded
    }

    /// Reads a comment that ``CrisisEvidence/write(to:)`` wrote, keeping its bytes as they were.
    init(reading reader: inout BinaryReader) throws(BinaryDecodingError) {
        let start = reader.offset
        let sampleKey = try reader.fixed64()
        _ = try reader.string()
        _ = try reader.string()
        let user = try reader.fixed64()
        let at = try reader.int64()
        let simhash = try reader.fixed64()
        let newAccount = try reader.optional { (reader: inout BinaryReader) throws(BinaryDecodingError) in
            try reader.bool()
        }
        _ = try reader.string()
        _ = try reader.optional { (reader: inout BinaryReader) throws(BinaryDecodingError) in try reader.string() }
        self.init(
            sampleKey: sampleKey,
            user: user,
            at: at,
            simhash: simhash,
            newAccount: newAccount,
            reader.bytes(start..<reader.offset)
        )
    }

    public var eventID: String { self.strings.eventID }
    public var subject: String { self.strings.subject }
    /// The first characters of the text, for the top negative terms.
    public var excerpt: String { self.strings.excerpt }
    public var lang: String? { self.strings.lang }

    /// The strings, read back from ``encoded``.
    private var strings: (eventID: String, subject: String, excerpt: String, lang: String?) {
        var reader = BinaryReader(self.encoded)
        do {
            try reader.skip(8)
            let eventID = try reader.string()
            let subject = try reader.string()
            try reader.skip(8)
            _ = try reader.int64()
            try reader.skip(8)
            _ = try reader.optional { (reader: inout BinaryReader) throws(BinaryDecodingError) in try reader.bool() }
            let excerpt = try reader.string()
            let lang = try reader.optional { (reader: inout BinaryReader) throws(BinaryDecodingError) in
                try reader.string()
            }
            return (eventID, subject, excerpt, lang)
        } catch {
            // Written by `init` or checked by `init(reading:)`.
            preconditionFailure("a comment's own encoding does not read back: \(error)")
        }
    }
}

/// The JSON shape of earlier versions, field by field.
extension NegativeComment: Codable {
    private enum CodingKeys: String, CodingKey {
        case sampleKey, eventID, subject, user, at, simhash, newAccount, excerpt, lang
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            sampleKey: try container.decode(UInt64.self, forKey: .sampleKey),
            eventID: try container.decode(String.self, forKey: .eventID),
            subject: try container.decode(String.self, forKey: .subject),
            user: try container.decode(UInt64.self, forKey: .user),
            at: try container.decode(Int64.self, forKey: .at),
            simhash: try container.decode(UInt64.self, forKey: .simhash),
            newAccount: try container.decodeIfPresent(Bool.self, forKey: .newAccount),
            excerpt: try container.decode(String.self, forKey: .excerpt),
            lang: try container.decodeIfPresent(String.self, forKey: .lang)
        )
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        let strings = self.strings
        try container.encode(self.sampleKey, forKey: .sampleKey)
        try container.encode(strings.eventID, forKey: .eventID)
        try container.encode(strings.subject, forKey: .subject)
        try container.encode(self.user, forKey: .user)
        try container.encode(self.at, forKey: .at)
        try container.encode(self.simhash, forKey: .simhash)
        try container.encodeIfPresent(self.newAccount, forKey: .newAccount)
        try container.encode(strings.excerpt, forKey: .excerpt)
        try container.encodeIfPresent(strings.lang, forKey: .lang)
    }
}

/// What the crisis detector needs beyond the counts, kept in each entity-window aggregate (only once
/// the window sees a negative comment or a purchase) and merged like the rest of it.
public struct CrisisEvidence: Sendable, Equatable, Codable {
    /// Comments sampled per entity-window.
    public static let sampleCapacity = 64
    /// Purchasers kept per entity-window, for the verified-customer join.
    public static let buyerCapacity = 256
    /// Characters of text kept per sampled comment.
    public static let excerptLength = 160

    /// Bottom-k sample of the negative comments, sorted by `sampleKey`.
    public var comments: [NegativeComment] = []
    /// Purchasers' user hashes, sorted, the smallest `buyerCapacity`.
    public var buyers: [UInt64] = []
    /// Over all negative comments (not only the sample): how many come from new accounts, and how many
    /// say when the account was created.
    public var newAccounts = 0
    public var withAccountAge = 0

    public init() {}

    /// Adds a negative comment to the counts, and to the sample if its key is among the lowest. `comment` is
    /// the event's comment if the event's other entity (a subject and its brand) already built it, and is built
    /// here otherwise: its SimHash and encoding are computed at most once per event, and both samples share
    /// its bytes.
    mutating func addNegative(
        _ event: Event,
        userHash: UInt64,
        newAccountMillis: Int64,
        comment: inout NegativeComment?
    ) {
        var newAccount: Bool? = nil
        if let created = event.user?.createdAt {
            let isNew = event.occurredAt - created <= newAccountMillis
            newAccount = isNew
            self.withAccountAge += 1
            if isNew { self.newAccounts += 1 }
        }
        let key = comment?.sampleKey ?? stableHash(event.eventID)
        if self.comments.count >= Self.sampleCapacity, let last = self.comments.last, key >= last.sampleKey {
            return
        }
        if comment == nil {
            let text = event.text ?? ""
            comment = NegativeComment(
                sampleKey: key,
                eventID: event.eventID,
                subject: event.subjectID,
                user: userHash,
                at: event.occurredAt,
                simhash: SimHash.of(text),
                newAccount: newAccount,
                // A text of at most `excerptLength` bytes has at most that many characters: it is its own
                // excerpt (counting characters to cut one was 0.7 % of the daemon's CPU).
                excerpt: text.utf8.count <= Self.excerptLength ? text : String(text.prefix(Self.excerptLength)),
                lang: event.lang
            )
        }
        let index = self.comments.firstIndex { $0.sampleKey > key } ?? self.comments.count
        self.comments.insert(comment!, at: index)
        if self.comments.count > Self.sampleCapacity { self.comments.removeLast() }
    }

    mutating func addBuyer(_ userHash: UInt64) {
        Self.insertSorted(userHash, into: &self.buyers, capacity: Self.buyerCapacity)
    }

    public mutating func merge(_ other: CrisisEvidence) {
        self.newAccounts += other.newAccounts
        self.withAccountAge += other.withAccountAge
        // Both samples are in ascending key order: one pass merges them, keeps the lowest keys and drops a
        // comment both sides hold (the same event id has the same key, so repeats meet in one run of equal
        // keys). A set of event ids and a sort were 1.5 % of the daemon's CPU in the brand stage.
        let mine = self.comments
        var merged: [NegativeComment] = []
        merged.reserveCapacity(min(Self.sampleCapacity, mine.count + other.comments.count))
        var i = 0
        var j = 0
        while merged.count < Self.sampleCapacity && (i < mine.count || j < other.comments.count) {
            let next: NegativeComment
            if j == other.comments.count || (i < mine.count && mine[i].sampleKey <= other.comments[j].sampleKey) {
                next = mine[i]
                i += 1
            } else {
                next = other.comments[j]
                j += 1
            }
            var run = merged.count - 1
            var repeated = false
            while run >= 0 && merged[run].sampleKey == next.sampleKey {
                if merged[run].eventID == next.eventID { repeated = true }
                run -= 1
            }
            if !repeated { merged.append(next) }
        }
        self.comments = merged
        for buyer in other.buyers { Self.insertSorted(buyer, into: &self.buyers, capacity: Self.buyerCapacity) }
    }

    private static func insertSorted(_ value: UInt64, into array: inout [UInt64], capacity: Int) {
        var low = 0
        var high = array.count
        while low < high {
            let middle = (low + high) / 2
            if array[middle] < value { low = middle + 1 } else { high = middle }
        }
        if low < array.count && array[low] == value { return }
        if array.count >= capacity && low >= capacity { return }
        array.insert(value, at: low)
        if array.count > capacity { array.removeLast() }
    }

    /// Approximate heap bytes.
    public var stateBytes: Int {
        // A comment: its fields, and its bytes' buffer (header and bytes). Not through its strings, which are
        // decoded from the bytes when asked for.
        64 + self.buyers.capacity * 8
            + self.comments.reduce(0) { $0 + MemoryLayout<NegativeComment>.stride + 32 + $1.encoded.count }
    }
}

/// Charikar's SimHash over character 3-grams (of the lower-cased text with spaces squeezed): texts that
/// share most of their shingles get hashes a few bits apart, whatever the language or script.
public enum SimHash {
    public static func of(_ text: String) -> UInt64 {
        // Each shingle's hash votes +1 or −1 for each of its 64 bits, and a bit of the result is set where
        // the +1 votes win: where more than half of the shingles have it. Counting the ones bit by bit cost 64
        // steps per character (3 % of the daemon's CPU); instead the eight bytes of a hash each spread their
        // bits into the eight byte lanes of one 64-bit word (`spread`), and eight lane counters add them, eight
        // bits per addition. A byte lane holds at most 255: the counters are emptied into `ones` every 255
        // shingles. The result is the same as the bit-by-bit vote (tested against it).
        withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 64) { ones in
            ones.initialize(repeating: 0)
            var counters: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0)
            var pending = 0
            func drain() {
                withUnsafeBytes(of: counters) { bytes in
                    // Lane `l` of counter `k` (bits 8·l to 8·l + 7 of its value) counts bit 8·k + l.
                    for byte in 0..<64 {
                        let counter = byte >> 3
                        let lane = byte & 7
                        ones[counter * 8 + lane] &+= UInt32(
                            truncatingIfNeeded: bytes.load(fromByteOffset: counter * 8, as: UInt64.self)
                                >> UInt64(lane * 8) & 0xFF
                        )
                    }
                }
                counters = (0, 0, 0, 0, 0, 0, 0, 0)
                pending = 0
            }
            var window: (UInt32, UInt32, UInt32) = (0, 0, 0)
            var filled = 0
            var previousSpace = true
            Self.spread.withUnsafeBufferPointer { spread in
                for scalar in text.unicodeScalars {
                    var value = scalar.value
                    if Self.isSeparator(value) {
                        if previousSpace { continue }
                        value = 0x20
                        previousSpace = true
                    } else {
                        previousSpace = false
                        if value &- 0x41 < 26 { value += 0x20 }  // ASCII upper case
                    }
                    window = (window.1, window.2, value)
                    filled += 1
                    guard filled >= 3 else { continue }
                    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
                    hash = (hash ^ UInt64(window.0)) &* 0x0000_0100_0000_01B3
                    hash = (hash ^ UInt64(window.1)) &* 0x0000_0100_0000_01B3
                    hash = (hash ^ UInt64(window.2)) &* 0x0000_0100_0000_01B3
                    hash ^= hash >> 29
                    hash = hash &* 0xBF58_476D_1CE4_E5B9
                    hash ^= hash >> 32
                    counters.0 &+= spread[Int(hash & 0xFF)]
                    counters.1 &+= spread[Int(hash >> 8 & 0xFF)]
                    counters.2 &+= spread[Int(hash >> 16 & 0xFF)]
                    counters.3 &+= spread[Int(hash >> 24 & 0xFF)]
                    counters.4 &+= spread[Int(hash >> 32 & 0xFF)]
                    counters.5 &+= spread[Int(hash >> 40 & 0xFF)]
                    counters.6 &+= spread[Int(hash >> 48 & 0xFF)]
                    counters.7 &+= spread[Int(hash >> 56)]
                    pending += 1
                    if pending == 255 { drain() }
                }
            }
            guard filled >= 3 else { return stableHash(text) }
            drain()
            let shingles = UInt32(filled - 2)
            var result: UInt64 = 0
            for bit in 0..<64 where ones[bit] &* 2 > shingles { result |= 1 << UInt64(bit) }
            return result
        }
    }

    /// For each byte value, its bit `i` moved to bit 8·i (the low bit of byte lane `i`).
    private static let spread: [UInt64] = (0..<256).map { (byte: Int) -> UInt64 in
        var word: UInt64 = 0
        for bit in 0..<8 where byte >> bit & 1 == 1 { word |= 1 << UInt64(8 * bit) }
        return word
    }

    /// Word separators: in ASCII everything but letters and digits; beyond it, Unicode `White_Space`
    /// (the same as `Unicode.Scalar.Properties.isWhitespace`, without its table lookup).
    @inline(__always)
    static func isSeparator(_ value: UInt32) -> Bool {
        if value < 0x80 {
            return !(value &- 0x30 < 10 || (value | 0x20) &- 0x61 < 26)
        }
        switch value {
        case 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000: return true
        default: return false
        }
    }

    /// Bits that differ.
    public static func distance(_ lhs: UInt64, _ rhs: UInt64) -> Int { (lhs ^ rhs).nonzeroBitCount }
}
