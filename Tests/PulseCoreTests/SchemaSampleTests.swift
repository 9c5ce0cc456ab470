import Foundation
import PulseCore
import Testing

/// The golden samples of `schemas/samples/event.v1` against the decoder (the Python check in `make test`
/// validates the same files against the JSON Schema).
@Suite("Event schema golden samples")
struct SchemaSampleTests {
    struct Manifest: Decodable {
        struct Sample: Decodable {
            var file: String
            var valid: Bool
            var reason: String?
        }
        var samples: [Sample]
    }

    static let directory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("schemas/samples/event.v1")

    @Test("Valid samples decode, invalid ones are rejected with the manifest's reason")
    func samplesAgreeWithDecoder() throws {
        let data = try Data(contentsOf: Self.directory.appendingPathComponent("manifest.json"))
        let manifest = try JSONDecoder().decode(Manifest.self, from: data)
        #expect(manifest.samples.count >= 10)
        for sample in manifest.samples {
            let bytes = try Data(contentsOf: Self.directory.appendingPathComponent(sample.file))
            // Samples end with a newline, which is JSON whitespace.
            let result = EventDecoder().decode(Array(bytes), nowMillis: nil)
            switch (result, sample.valid) {
            case (.success, true):
                continue
            case (.failure(let rejection), false):
                #expect(rejection.reason.rawValue == sample.reason, "\(sample.file): \(rejection)")
            case (.success(let event), false):
                Issue.record("\(sample.file) was accepted: \(event)")
            case (.failure(let rejection), true):
                Issue.record("\(sample.file) was rejected: \(rejection)")
            }
        }
    }

    @Test("The full comment sample decodes to the expected values")
    func fullComment() throws {
        let bytes = try Data(contentsOf: Self.directory.appendingPathComponent("comment-full.json"))
        let event = try EventDecoder().decode(Array(bytes), nowMillis: nil).get()
        #expect(event.text == "Sản phẩm rất tệ, tôi rất thất vọng. ¡No! 😡")
        #expect(event.lang == "vi" && event.sentiment == -0.82 && event.user?.followers == 1200)
        #expect(event.occurredAt == 1_795_687_205_250)
    }
}
