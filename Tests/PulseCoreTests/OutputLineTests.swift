import Foundation
import PulseCore
import Testing

@Suite("Output lines")
struct OutputLineTests {
    @Test("JSON string escaping round-trips through a JSON parser")
    func quoting() throws {
        let tricky = "quote \" backslash \\ newline \n tab \t nul \u{0} bell \u{07} del \u{7F} é 中 😀 \u{2028}"
        let quoted = JSONText.quote(tricky)
        let parsed = try JSONSerialization.jsonObject(with: Data("[\(quoted)]".utf8)) as? [String]
        #expect(parsed == [tricky])
        #expect(!quoted.contains("\n"))
    }

    @Test("Base64 matches Foundation's", arguments: [0, 1, 2, 3, 4, 5, 255])
    func base64(_ count: Int) {
        let bytes = (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
        #expect(Base64.encode(bytes) == Data(bytes).base64EncodedString())
    }

    @Test("A dead-letter line carries the original text, or base64 when it is not UTF-8")
    func deadLetterLines() throws {
        var replay = Replay(sourceName: "events.ndjson")
        let text = Array(#"{"event_id":1}"#.utf8)
        let lines = text.withUnsafeBytes { replay.feed($0, offset: 7) }
        #expect(lines.count == 1)
        let object = try #require(
            try JSONSerialization.jsonObject(with: Data(lines[0].render().utf8)) as? [String: Any]
        )
        #expect(object["topic"] as? String == "deadletter")
        #expect(object["key"] is NSNull)
        #expect(object["value"] as? String == #"{"event_id":1}"#)
        let headers = try #require(object["headers"] as? [String: String])
        #expect(headers["crowdpulse.reason"] == "bad_type")
        #expect(headers["crowdpulse.source.topic"] == "events.ndjson")
        #expect(headers["crowdpulse.source.offset"] == "7")

        let binary: [UInt8] = [0xFF, 0x00, 0x7B]
        let binaryLines = binary.withUnsafeBytes { replay.feed($0, offset: 8) }
        let binaryObject = try #require(
            try JSONSerialization.jsonObject(with: Data(binaryLines[0].render().utf8)) as? [String: Any]
        )
        #expect(binaryObject["value"] as? String == "/wB7")
        #expect(binaryObject["value_encoding"] as? String == "base64")
        #expect(
            replay.summary
                == "events 2, accepted 0, dead-lettered 2 (invalid_utf8 1, bad_type 1), duplicates 0, late 0, metric records 0, alert records 0"
        )
    }
}
