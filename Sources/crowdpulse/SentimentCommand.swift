import ArgumentParser
import Foundation
import PulseCore

/// `crowdpulse sentiment`: scores JSON lines from stdin with the built-in multilingual scorer.
struct SentimentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sentiment",
        abstract: "Score comments: JSON lines {\"id\", \"text\", \"lang\"?} on stdin, one result per line on stdout.",
        discussion: """
            Each input line is an object with "text" (a string), an optional "id" (echoed as given) and an \
            optional "lang" (a BCP 47 tag; when absent or unsupported the language is identified from the \
            text). Each output line is {"id": …, "score": x, "label": "negative|neutral|positive", \
            "lang": "…"}, in input order, written as soon as its line is read. A malformed line gets \
            {"line": N, "error": "…"} and the command goes on. Blank lines are skipped.
            """
    )

    @Flag(help: "Lexicon only: no negation, boosters, contrast, caps or exclamation rules (for comparison).")
    var lexiconOnly = false

    func run() throws {
        let scorer = MultilingualSentimentScorer(rules: !self.lexiconOnly)
        var lineNumber = 0
        while let line = readLine(strippingNewline: true) {
            lineNumber += 1
            if line.allSatisfy({ $0.isWhitespace }) { continue }
            let output: String
            switch Self.parse(line) {
            case .success(let request):
                let analysis = scorer.analyze(request.text, lang: request.lang)
                output =
                    "{\"id\":\(request.idJSON),\"score\":\(Self.format(analysis.score)),"
                    + "\"label\":\"\(analysis.label.rawValue)\",\"lang\":\"\(analysis.languageTag)\"}"
            case .failure(let error):
                output = "{\"line\":\(lineNumber),\"error\":\(JSONText.quote(error.message))}"
            }
            // One write per line: a caller waiting on each answer gets it at once (no stdio buffering).
            FileHandle.standardOutput.write(Data((output + "\n").utf8))
        }
    }

    struct Request {
        var idJSON: String
        var text: String
        var lang: String?
    }

    struct LineError: Error {
        var message: String
    }

    static func parse(_ line: String) -> Result<Request, LineError> {
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: Data(line.utf8), options: [])
        } catch {
            return .failure(LineError(message: "not valid JSON"))
        }
        guard let members = object as? [String: Any] else {
            return .failure(LineError(message: "expected a JSON object"))
        }
        guard let text = members["text"] as? String else {
            return .failure(
                LineError(message: members["text"] == nil ? "missing \"text\"" : "\"text\" must be a string")
            )
        }
        var lang: String? = nil
        if let value = members["lang"], !(value is NSNull) {
            guard let string = value as? String else {
                return .failure(LineError(message: "\"lang\" must be a string"))
            }
            lang = string.isEmpty ? nil : string
        }
        return .success(Request(idJSON: Self.idJSON(members["id"]), text: text, lang: lang))
    }

    /// The `id` as JSON, as given: strings quoted, numbers as numbers, anything else `null`.
    static func idJSON(_ value: Any?) -> String {
        switch value {
        case let string as String: return JSONText.quote(string)
        case let number as NSNumber:
            let text = number.stringValue
            return number.doubleValue.isFinite && Double(text) != nil ? text : "null"
        default: return "null"
        }
    }

    static func format(_ score: Double) -> String {
        let rounded = (score * 10_000).rounded() / 10_000
        return rounded == 0 ? "0" : "\(rounded)"
    }
}
