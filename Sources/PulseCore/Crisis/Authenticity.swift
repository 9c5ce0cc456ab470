/// Organic backlash or coordinated attack? Signals over a spike's sampled negative comments (design §5).
///
/// A comment counts as *coordinated* when it belongs to a near-duplicate cluster written by several
/// authors, or when it comes from a new account that is not a verified customer and either posted in a
/// synchronized burst or posted repeatedly. Verified customers (authors who bought from the brand) are
/// never counted as coordinated: an angry buyer is the backlash a brand must hear.
public struct AuthenticityAssessment: Sendable, Equatable {
    public enum Verdict: String, Sendable {
        case organic
        case mixed
        case suspectedCoordinated = "suspected_coordinated"
    }

    /// Sampled negative comments the signals were computed over.
    public var sampleSize: Int
    /// Share of negative comments from accounts created within 30 days (over those that give an age).
    public var newAccountShare: Double
    /// Share of sampled comments in near-duplicate clusters (SimHash within 6 bits) with ≥ 3 authors.
    public var duplicateShare: Double
    /// Largest such cluster, in comments.
    public var largestCluster: Int
    /// Share of the sample written by its 10 most active authors, and the Herfindahl–Hirschman index
    /// of author shares (1 = one author wrote everything).
    public var top10AuthorShare: Double
    public var authorHHI: Double
    /// Share of comments posted in 10-second slots at least 4× busier than the window's average slot.
    public var burstSynchrony: Double
    /// Share of sampled authors who bought from this brand before.
    public var verifiedCustomerShare: Double
    public var coordinatedShare: Double
    public var verdict: Verdict

    public static let empty = AuthenticityAssessment(
        sampleSize: 0,
        newAccountShare: 0,
        duplicateShare: 0,
        largestCluster: 0,
        top10AuthorShare: 0,
        authorHHI: 0,
        burstSynchrony: 0,
        verifiedCustomerShare: 0,
        coordinatedShare: 0,
        verdict: .organic
    )

    /// SimHash distance at or under which two texts count as near-duplicates.
    public static let duplicateDistance = 6
    public static let burstSlotMillis: Int64 = 10_000

    /// Assesses `comments` (the sampled negatives of the detection window).
    ///
    /// - Parameters:
    ///   - newAccounts: over *all* negative comments of the window: from new accounts, and with a known age.
    ///   - isBuyer: whether an author bought from the brand before.
    ///   - mixedAt: `coordinated_share` from which the verdict is `mixed`.
    ///   - coordinatedAt: above which it is `suspected_coordinated`.
    public static func assess(
        _ comments: [NegativeComment],
        newAccounts: (count: Int, known: Int),
        isBuyer: (UInt64) -> Bool,
        mixedAt: Double,
        coordinatedAt: Double
    ) -> AuthenticityAssessment {
        guard !comments.isEmpty else { return .empty }
        let count = comments.count
        let total = Double(count)

        // Authors.
        var perAuthor: [UInt64: Int] = [:]
        for comment in comments { perAuthor[comment.user, default: 0] += 1 }
        let authorCounts = perAuthor.values.sorted(by: >)
        let top10 = Double(authorCounts.prefix(10).reduce(0, +)) / total
        let hhi = authorCounts.reduce(0.0) { $0 + (Double($1) / total) * (Double($1) / total) }
        let buyers = Set(perAuthor.keys.filter(isBuyer))

        // Near-duplicate clusters: union-find over pairs within the SimHash distance (n ≤ a few hundred).
        var parent = Array(0..<count)
        func root(_ index: Int) -> Int {
            var index = index
            while parent[index] != index {
                parent[index] = parent[parent[index]]
                index = parent[index]
            }
            return index
        }
        // The hashes side by side: the pairs loop then reads 8 bytes per comment, not a copy of the comment
        // (with its strings' reference counts) per pair; it was 2 % of the pipeline's profile.
        let hashes = comments.map(\.simhash)
        hashes.withUnsafeBufferPointer { hashes in
            for first in 0..<count {
                let hash = hashes[first]
                for second in (first + 1)..<count
                where SimHash.distance(hash, hashes[second]) <= Self.duplicateDistance {
                    let a = root(first)
                    let b = root(second)
                    if a != b { parent[a] = b }
                }
            }
        }
        var clusterMembers: [Int: [Int]] = [:]
        for index in 0..<count { clusterMembers[root(index), default: []].append(index) }
        var inDuplicateCluster = [Bool](repeating: false, count: count)
        var largest = 0
        for members in clusterMembers.values {
            let authors = Set(members.map { comments[$0].user })
            guard members.count >= 3, authors.count >= 3 else { continue }
            largest = max(largest, members.count)
            for member in members { inDuplicateCluster[member] = true }
        }

        // Synchronized bursts: busy 10-second slots.
        var slots: [Int64: Int] = [:]
        for comment in comments { slots[comment.at / Self.burstSlotMillis, default: 0] += 1 }
        let first = comments.map(\.at).min()! / Self.burstSlotMillis
        let last = comments.map(\.at).max()! / Self.burstSlotMillis
        let meanPerSlot = total / Double(last - first + 1)
        let busy = Set(slots.filter { $0.value >= 3 && Double($0.value) >= 4 * meanPerSlot }.keys)
        let inBurst = comments.map { busy.contains($0.at / Self.burstSlotMillis) }

        var coordinated = 0
        var duplicates = 0
        for (index, comment) in comments.enumerated() {
            if inDuplicateCluster[index] { duplicates += 1 }
            guard !buyers.contains(comment.user) else { continue }
            let suspicious =
                inDuplicateCluster[index]
                || (comment.newAccount == true && (inBurst[index] || (perAuthor[comment.user] ?? 0) >= 3))
            if suspicious { coordinated += 1 }
        }
        let coordinatedShare = Double(coordinated) / total
        let verdict: Verdict =
            coordinatedShare > coordinatedAt ? .suspectedCoordinated : coordinatedShare >= mixedAt ? .mixed : .organic
        return AuthenticityAssessment(
            sampleSize: count,
            newAccountShare: newAccounts.known > 0 ? Double(newAccounts.count) / Double(newAccounts.known) : 0,
            duplicateShare: Double(duplicates) / total,
            largestCluster: largest,
            top10AuthorShare: top10,
            authorHHI: hhi,
            burstSynchrony: Double(inBurst.filter { $0 }.count) / total,
            verifiedCustomerShare: perAuthor.isEmpty ? 0 : Double(buyers.count) / Double(perAuthor.count),
            coordinatedShare: coordinatedShare,
            verdict: verdict
        )
    }
}

// MARK: - Binary state

extension AuthenticityAssessment.Verdict {
    /// The verdict as one byte of the binary format.
    var code: UInt8 {
        switch self {
        case .organic: return 0
        case .mixed: return 1
        case .suspectedCoordinated: return 2
        }
    }

    init(reading reader: inout BinaryReader) throws(BinaryDecodingError) {
        switch try reader.byte() {
        case 0: self = .organic
        case 1: self = .mixed
        case 2: self = .suspectedCoordinated
        case let other: throw reader.error("authenticity verdict \(other)")
        }
    }
}

extension AuthenticityAssessment {
    /// Appends the assessment; shares bit for bit.
    func write(to writer: inout BinaryWriter) {
        writer.int(self.sampleSize)
        writer.double(self.newAccountShare)
        writer.double(self.duplicateShare)
        writer.int(self.largestCluster)
        writer.double(self.top10AuthorShare)
        writer.double(self.authorHHI)
        writer.double(self.burstSynchrony)
        writer.double(self.verifiedCustomerShare)
        writer.double(self.coordinatedShare)
        writer.byte(self.verdict.code)
    }

    init(reading reader: inout BinaryReader) throws(BinaryDecodingError) {
        self.init(
            sampleSize: try reader.counter(),
            newAccountShare: try reader.double(),
            duplicateShare: try reader.double(),
            largestCluster: try reader.counter(),
            top10AuthorShare: try reader.double(),
            authorHHI: try reader.double(),
            burstSynchrony: try reader.double(),
            verifiedCustomerShare: try reader.double(),
            coordinatedShare: try reader.double(),
            verdict: try Verdict(reading: &reader)
        )
    }
}
