import Foundation
import Testing

@Suite("crowdpulse replay")
struct ReplayCommandTests {
    @Test("Replays a file: dead letters as JSON lines on stdout, blank lines skipped, summary on stderr")
    func replaysFile() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("replay-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let good =
            #"{"event_id":"a","type":"like","occurred_at":"2030-01-01T00:00:00Z","subject_id":"p","user_id":"u"}"#
        var content = Data((good + "\n\n   \n" + good + "\n" + #"{"event_id":"b"}"# + "\n").utf8)
        content.append(contentsOf: [0xC3, 0x28, 0x0A])  // invalid UTF-8, then a final line without newline
        content.append(Data(#"{"event_id":"c","type":"share","occurred_at":1,"subject_id":"p","user_id":"u"}"#.utf8))
        let file = directory.appendingPathComponent("events.ndjson")
        try content.write(to: file)

        let process = Process()
        process.executableURL = URL(fileURLWithPath: try crowdpulseBinary())
        process.arguments = ["replay", file.path]
        let stdout = Pipe()
        let stderr = Pipe()
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        let output = stdout.fileHandleForReading.readDataToEndOfFile()
        let errors = stderr.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)

        let lines = String(decoding: output, as: UTF8.self).split(separator: "\n")
        let all = try lines.map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        // The two accepted events (one window, no brand) give one subject record; the rest are dead letters.
        #expect(all.filter { $0["topic"] as? String == "metrics" }.count == 1)
        let objects = all.filter { $0["topic"] as? String == "deadletter" }
        #expect(objects.count == 2)
        let reasons = objects.map { ($0["headers"] as! [String: String])["crowdpulse.reason"] }
        #expect(reasons == ["missing_field", "invalid_utf8"])
        #expect((objects[0]["headers"] as! [String: String])["crowdpulse.source.offset"] == "5")
        #expect(objects[1]["value_encoding"] as? String == "base64")
        #expect(
            String(decoding: errors, as: UTF8.self).contains(
                "events 5, accepted 2, dead-lettered 2 (invalid_utf8 1, missing_field 1), duplicates 1, late 1, metric records 1, alert records 0"
            )
        )
    }
}
