import Foundation
import PulseCore
import Testing

@Suite("Synthetic events")
struct SyntheticEventsTests {
    @Test("The same seed gives the same events; another seed does not")
    func deterministicPerSeed() {
        var first = SyntheticEvents(configuration: .init(seed: 7))
        var second = SyntheticEvents(configuration: .init(seed: 7))
        var other = SyntheticEvents(configuration: .init(seed: 8))
        let a = (0..<100).map { first.next(occurredAtMillis: Int64($0)) }
        let b = (0..<100).map { second.next(occurredAtMillis: Int64($0)) }
        let c = (0..<100).map { other.next(occurredAtMillis: Int64($0)) }
        #expect(a == b)
        #expect(a != c)
    }

    @Test("Events are valid JSON objects with the v1 fields, in the standard mix")
    func mixAndShape() throws {
        var generator = SyntheticEvents(configuration: .init(subjects: 50, brands: 5))
        var counts: [String: Int] = [:]
        let total = 20_000
        var sizes = 0
        for index in 0..<total {
            let event = generator.next(occurredAtMillis: 1_790_000_000_000 + Int64(index))
            sizes += event.json.utf8.count
            let object = try #require(
                try JSONSerialization.jsonObject(with: Data(event.json.utf8)) as? [String: Any]
            )
            #expect(object["type"] as? String == event.type)
            #expect(object["subject_id"] as? String == event.key)
            #expect(object["occurred_at"] as? Int == 1_790_000_000_000 + index)
            for field in ["event_id", "user_id", "brand"] {
                #expect(object[field] is String, "missing \(field)")
            }
            if event.type == "comment" { #expect(object["text"] is String) }
            if event.type == "purchase" {
                #expect(object["currency"] as? String == "USD")
                #expect((object["amount"] as? Double ?? -1) >= 5)
            }
            counts[event.type, default: 0] += 1
        }
        func share(_ type: String) -> Double { Double(counts[type, default: 0]) / Double(total) }
        #expect(abs(share("like") - 0.60) < 0.02)
        #expect(abs(share("comment") - 0.20) < 0.02)
        #expect(abs(share("share") - 0.15) < 0.02)
        #expect(abs(share("purchase") - 0.05) < 0.01)
        #expect((200...400).contains(sizes / total), "standard events are about 300 bytes")
    }
}
