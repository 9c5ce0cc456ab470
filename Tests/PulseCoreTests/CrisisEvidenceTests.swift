import Foundation
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

@Suite("Negative comments held as their encoding")
struct NegativeCommentEncodingTests {
    static let comments = [
        NegativeComment(
            sampleKey: 7,
            eventID: "evt-0123456789-long-enough-for-the-heap",
            subject: "post-9",
            user: 0xDEAD_BEEF,
            at: 1_790_000_000_123,
            simhash: .max,
            newAccount: true,
            excerpt: "worst service ever, never again",
            lang: "en"
        ),
        NegativeComment(
            sampleKey: 0,
            eventID: "e",
            subject: "sujet-é",
            user: 0,
            at: -5,
            simhash: 0,
            newAccount: nil,
            excerpt: "",
            lang: nil
        ),
        NegativeComment(
            sampleKey: .max,
            eventID: "e2",
            subject: "s",
            user: 1,
            at: 0,
            simhash: 12,
            newAccount: false,
            excerpt: "最悪の対応 😡",
            lang: "ja"
        ),
    ]

    /// The evidence as every version before this one wrote it, one field at a time.
    static func fieldByField(_ evidence: CrisisEvidence) -> [UInt8] {
        var writer = BinaryWriter()
        writer.varint(UInt64(evidence.comments.count))
        for comment in evidence.comments {
            writer.fixed64(comment.sampleKey)
            writer.string(comment.eventID)
            writer.string(comment.subject)
            writer.fixed64(comment.user)
            writer.int(comment.at)
            writer.fixed64(comment.simhash)
            writer.optional(comment.newAccount) { $0.bool($1) }
            writer.string(comment.excerpt)
            writer.optional(comment.lang) { $0.string($1) }
        }
        writer.varint(UInt64(evidence.buyers.count))
        for buyer in evidence.buyers { writer.fixed64(buyer) }
        writer.int(evidence.newAccounts)
        writer.int(evidence.withAccountAge)
        return writer.bytes
    }

    @Test("Every field reads back as given, and the evidence's bytes are the format's, field by field")
    func fieldsAndFormat() throws {
        let given = Self.comments[0]
        #expect(given.eventID == "evt-0123456789-long-enough-for-the-heap")
        #expect(given.subject == "post-9" && given.excerpt == "worst service ever, never again")
        #expect(given.lang == "en" && given.newAccount == true && given.user == 0xDEAD_BEEF)
        #expect(given.at == 1_790_000_000_123 && given.simhash == .max && given.sampleKey == 7)
        #expect(Self.comments[1].subject == "sujet-é" && Self.comments[1].lang == nil)
        #expect(Self.comments[1].excerpt.isEmpty && Self.comments[1].newAccount == nil && Self.comments[1].at == -5)
        #expect(Self.comments[2].excerpt == "最悪の対応 😡" && Self.comments[2].newAccount == false)

        var evidence = CrisisEvidence()
        evidence.comments = Self.comments
        evidence.buyers = [3, 9, 27]
        evidence.newAccounts = 2
        evidence.withAccountAge = 5
        var writer = BinaryWriter()
        evidence.write(to: &writer)
        #expect(writer.bytes == Self.fieldByField(evidence))

        var reader = BinaryReader(writer.bytes)
        let read = try CrisisEvidence(reading: &reader)
        #expect(reader.isAtEnd && read == evidence)
        for (comment, original) in zip(read.comments, Self.comments) {
            #expect(comment.eventID == original.eventID && comment.subject == original.subject)
            #expect(comment.excerpt == original.excerpt && comment.lang == original.lang)
            #expect(comment.user == original.user && comment.at == original.at && comment.simhash == original.simhash)
            #expect(comment.newAccount == original.newAccount && comment.sampleKey == original.sampleKey)
        }
    }

    /// The JSON shape the comment had as a struct of stored fields.
    struct Fields: Codable, Equatable {
        var sampleKey: UInt64
        var eventID: String
        var subject: String
        var user: UInt64
        var at: Int64
        var simhash: UInt64
        var newAccount: Bool?
        var excerpt: String
        var lang: String?
    }

    @Test("JSON keeps the field-by-field shape, both ways")
    func json() throws {
        for comment in Self.comments {
            let json = try JSONEncoder().encode(comment)
            let fields = try JSONDecoder().decode(Fields.self, from: json)
            #expect(
                fields
                    == Fields(
                        sampleKey: comment.sampleKey,
                        eventID: comment.eventID,
                        subject: comment.subject,
                        user: comment.user,
                        at: comment.at,
                        simhash: comment.simhash,
                        newAccount: comment.newAccount,
                        excerpt: comment.excerpt,
                        lang: comment.lang
                    )
            )
            #expect(try JSONDecoder().decode(NegativeComment.self, from: JSONEncoder().encode(fields)) == comment)
        }
    }

    @Test("An event's comment is built once: its subject's and its brand's samples share the bytes")
    func builtOncePerEvent() throws {
        var engine = WindowEngine(configuration: .init(window: .hopping(size: 60_000, step: 30_000)))
        let json =
            #"{"event_id":"c-1","type":"comment","occurred_at":1790000040000,"subject_id":"post-1","#
            + #""user_id":"u-1","brand":"acme","text":"awful, broken, a scam","sentiment":-0.9}"#
        guard case .success(let event) = EventDecoder().decode(Array(json.utf8), nowMillis: nil) else {
            Issue.record("the event does not decode")
            return
        }
        _ = engine.add(event)
        let samples = engine.closeAll().compactMap { output -> [NegativeComment]? in
            guard case .metrics(let record) = output else { return nil }
            return record.aggregate.crisis?.comments
        }
        // Two windows (hopping), a subject and a brand in each.
        #expect(samples.count == 4 && samples.allSatisfy { $0.count == 1 })
        let storage = Set(samples.map { $0[0].encoded.withUnsafeBufferPointer { UInt(bitPattern: $0.baseAddress) } })
        #expect(storage.count == 1)
        #expect(samples[0][0].excerpt == "awful, broken, a scam" && samples[0][0].subject == "post-1")
    }
}
