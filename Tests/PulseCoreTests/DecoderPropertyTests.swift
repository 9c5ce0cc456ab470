import PulseCore
import Testing

@Suite("Event decoder: random and mutated input")
struct DecoderPropertyTests {
    static let seeds: [String] = {
        var generator = SyntheticEvents(configuration: .init(seed: 99))
        return (0..<50).map { generator.next(occurredAtMillis: nowMillis + Int64($0)).json } + [
            event(["type": #""comment""#, "text": #""\ud83d\ude00 \u00e9 \"q\"""#, "lang": #""fr""#]),
            event(["meta": #"{"a":[1,{"b":[true,false,null]}],"c":-1.5e-3}"#]),
        ]
    }()

    @Test("Mutated events never crash the decoder and decode the same way twice")
    func mutations() {
        var random = SplitMix64(seed: 2026)
        let decoder = EventDecoder()
        let interesting: [UInt8] =
            Array(#"{}[]",:\\u0123456789eE+-.tfn "#.utf8) + [0x00, 0x1F, 0x7F, 0x80, 0xC3, 0xED, 0xF4, 0xFF]
        var accepted = 0
        var rejected = 0
        for round in 0..<20_000 {
            var bytes = Array(Self.seeds[round % Self.seeds.count].utf8)
            let edits = 1 + Int(random.next() % 4)
            for _ in 0..<edits where !bytes.isEmpty {
                let position = Int(random.next() % UInt64(bytes.count))
                switch random.next() % 4 {
                case 0: bytes[position] = interesting[Int(random.next() % UInt64(interesting.count))]
                case 1: bytes.remove(at: position)
                case 2: bytes.insert(interesting[Int(random.next() % UInt64(interesting.count))], at: position)
                default: bytes.removeSubrange(position...)  // truncation
                }
            }
            let first = decoder.decode(bytes, nowMillis: nowMillis)
            #expect(first == decoder.decode(bytes, nowMillis: nowMillis))
            switch first {
            case .success: accepted += 1
            case .failure: rejected += 1
            }
        }
        // Both outcomes occur, so the mutations are neither all harmless nor all fatal.
        #expect(accepted > 100 && rejected > 100)
    }

    @Test("Random bytes are rejected, never accepted, never crash")
    func randomBytes() {
        var random = SplitMix64(seed: 7)
        let decoder = EventDecoder()
        for _ in 0..<20_000 {
            let count = Int(random.next() % 300)
            let bytes = (0..<count).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            if case .success(let event) = decoder.decode(bytes, nowMillis: nowMillis) {
                Issue.record("random bytes accepted as \(event)")
            }
        }
    }
}
