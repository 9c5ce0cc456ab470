import Testing

@testable import PulseCore

@Suite("Crisis evidence")
struct CrisisEvidenceTests {
    /// The definition: both samples together, in key order (the receiver's first among equal keys), the first
    /// comment of each event id, the lowest `sampleCapacity`.
    static func referenceMerge(_ left: [NegativeComment], _ right: [NegativeComment]) -> [NegativeComment] {
        var seen = Set<String>()
        let all = (left + right).enumerated().sorted {
            ($0.element.sampleKey, $0.offset) < ($1.element.sampleKey, $1.offset)
        }
        return Array(
            all.map(\.element).filter { seen.insert($0.eventID).inserted }.prefix(CrisisEvidence.sampleCapacity)
        )
    }

    static func comment(_ id: String, key: UInt64? = nil) -> NegativeComment {
        NegativeComment(
            sampleKey: key ?? stableHash(id),
            eventID: id,
            subject: "s",
            user: 1,
            at: 0,
            simhash: 0,
            newAccount: nil,
            excerpt: id,
            lang: nil
        )
    }

    @Test("Merging keeps the lowest keys once each, as sorting both samples and dropping repeated ids does")
    func mergeEqualsTheDefinition() {
        var generator = SplitMix64(seed: 11)
        for round in 0..<500 {
            // Ids from a small pool, so both sides often hold the same event. In every tenth round a fifth of
            // the ids share one key (a hash collision: different ids, equal keys), and all of them must stay.
            // An id always has the same key, as `stableHash` gives it.
            func side() -> [NegativeComment] {
                let size = Int(generator.next() % 90)
                var comments: [NegativeComment] = []
                for _ in 0..<size {
                    let number = generator.next() % 120
                    comments.append(Self.comment("e\(number)", key: round % 10 == 0 && number % 5 == 0 ? 42 : nil))
                }
                var seen = Set<String>()
                let sorted = comments.enumerated().sorted {
                    ($0.element.sampleKey, $0.offset) < ($1.element.sampleKey, $1.offset)
                }
                return Array(sorted.map(\.element).filter { seen.insert($0.eventID).inserted }.prefix(64))
            }
            var left = CrisisEvidence()
            left.comments = side()
            var right = CrisisEvidence()
            right.comments = side()
            let expected = Self.referenceMerge(left.comments, right.comments)
            left.merge(right)
            #expect(left.comments == expected, "round \(round)")
            if left.comments != expected { return }
        }
    }
}
