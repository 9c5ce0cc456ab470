import Foundation
import PulseCore
import Testing

@testable import PulseDaemon

@Suite("Repartition messages")
struct RepartitionMessageTests {
    @Test("Partials and watermarks round-trip in the binary format; JSON from an older instance still reads")
    func roundTrip() throws {
        var engine = WindowEngine()
        var generator = SyntheticEvents(configuration: .init(subjects: 5, brands: 1, seed: 4))
        for index in 0..<500 {
            let json = generator.next(occurredAtMillis: 1_790_000_000_000 + Int64(index) * 100).json
            guard case .success(let event) = EventDecoder().decode(json, nowMillis: nil) else { continue }
            _ = engine.add(event)
        }
        let aggregate = try #require(
            engine.closeAll().compactMap { output -> WindowAggregate? in
                if case .metrics(let record) = output, record.key.level == .brand { return record.aggregate }
                return nil
            }.first
        )
        let messages = [
            RepartitionMessage(
                kind: .partial,
                source: 1_000_002,
                brand: "brand-0",
                windowStart: 1_790_000_040_000,
                aggregate: aggregate,
                final: false
            ),
            RepartitionMessage(kind: .watermark, source: 3, watermark: -5, idle: true),
        ]
        for message in messages {
            let bytes = message.encoded()
            #expect(bytes.first == RepartitionMessage.binaryMagic)
            #expect(RepartitionMessage.decode(bytes[...]) == message)
            let json = try JSONEncoder().encode(message)
            #expect(RepartitionMessage.decode(Array(json)[...]) == message)
            if message.aggregate != nil {
                // The counts per event type stay a JSON array, as older instances write and read them.
                let object = try #require(try JSONSerialization.jsonObject(with: json) as? [String: Any])
                let counts = try #require((object["aggregate"] as? [String: Any])?["counts"] as? [Int])
                #expect(counts == Array(aggregate.counts))
                #expect(counts.reduce(0, +) > 0)
            }
            #expect(RepartitionMessage.decode(bytes.dropLast()) == nil)
        }
        #expect(RepartitionMessage.decode([RepartitionMessage.binaryMagic, 7][...]) == nil)
    }
}
