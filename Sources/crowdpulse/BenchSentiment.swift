import ArgumentParser
import Foundation
import PulseCore

/// `crowdpulse bench-sentiment`: comments per second through the built-in scorer on one core, with and
/// without language identification, and the resident memory the loaded lexicons take.
struct BenchSentiment: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-sentiment",
        abstract: "Measure the multilingual sentiment scorer: comments/s on one core and resident memory."
    )

    @Option(help: "Comments in the generated mixed-language corpus (about 100 characters each).")
    var comments: Int = 50_000

    @Option(help: "Passes over the corpus.")
    var passes: Int = 10

    @Option(help: "Also measure on the JSON-lines files (\"text\" field) of this directory, e.g. tools/sentiment/dev.")
    var corpus: String?

    func run() throws {
        print("cores: \(ProcessInfo.processInfo.activeProcessorCount); the scorer runs on one")
        let before = Self.residentBytes()
        let scorer = MultilingualSentimentScorer()
        _ = scorer.analyze("warm up: load the lexicons", lang: nil)
        let after = Self.residentBytes()
        print(
            "resources: \(MultilingualSentimentScorer.resourceBytes / 1024) KiB in tables; "
                + "resident memory grew by \((after - before) / 1024) KiB on loading"
        )

        let generated = Self.generatedCorpus(count: self.comments)
        self.measure(scorer, generated, name: "generated mixed-language corpus")
        if let directory = self.corpus {
            let texts = try Self.load(directory)
            if !texts.isEmpty { self.measure(scorer, texts, name: "\(directory) (\(texts.count) comments)") }
        }
    }

    private func measure(_ scorer: MultilingualSentimentScorer, _ corpus: [(lang: String, text: String)], name: String)
    {
        let characters = corpus.reduce(0) { $0 + $1.text.count }
        print("\(name): mean \(characters / max(1, corpus.count)) characters")
        let clock = ContinuousClock()
        var checksum = 0.0
        for identify in [true, false] {
            let elapsed = clock.measure {
                for _ in 0..<self.passes {
                    for comment in corpus {
                        checksum += scorer.analyze(comment.text, lang: identify ? nil : comment.lang).score
                    }
                }
            }
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
            let rate = Double(corpus.count * self.passes) / seconds
            let mode = identify ? "lang absent (identification included)" : "lang given"
            print("  \(mode): \(Int(rate)) comments/s, \(String(format: "%.2f", 1e6 / rate)) µs each")
        }
        if checksum.isNaN { print("checksum \(checksum)") }
    }

    /// Comments of about 100 characters in every supported language: the generator's texts, joined in
    /// varying pairs of the same language.
    static func generatedCorpus(count: Int) -> [(lang: String, text: String)] {
        let samples = SyntheticEvents.comments
        var random = SplitMix64(seed: 7)
        var corpus: [(lang: String, text: String)] = []
        corpus.reserveCapacity(count)
        while corpus.count < count {
            let first = samples[Int(random.next() % UInt64(samples.count))]
            var text = first.text
            while text.count < 90 {
                let same = samples.filter { $0.lang == first.lang }
                text += " " + same[Int(random.next() % UInt64(same.count))].text
            }
            corpus.append((first.lang, String(text.prefix(110))))
        }
        return corpus
    }

    static func load(_ directory: String) throws -> [(lang: String, text: String)] {
        var texts: [(lang: String, text: String)] = []
        let files = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".jsonl") }
        for file in files.sorted() {
            let content = try String(contentsOfFile: directory + "/" + file, encoding: .utf8)
            let fallback = String(file.dropLast(".jsonl".count))
            for line in content.split(separator: "\n") {
                guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                    let text = object["text"] as? String
                else { continue }
                texts.append(((object["lang"] as? String) ?? fallback, text))
            }
        }
        return texts
    }

    static func residentBytes() -> Int {
        guard let statm = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let fields = statm.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }
}
