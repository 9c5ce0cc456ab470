import Benchmark
import PulseCore

/// The core's hot paths, per event: decoding, ingestion (decode + validate + dedup), the window update,
/// sentiment scoring of a comment, and the whole offline pipeline (replay). Throughput is per event.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        scalingFactor: .kilo,
        maxDuration: .seconds(3),
        maxIterations: 50
    )
    let origin: Int64 = 1_790_000_000_000
    var generator = SyntheticEvents()
    // 1 000 standard events (60% likes, 20% comments in 15 languages, 15% shares, 5% purchases), 2 000/s.
    let corpus: [[UInt8]] = (0..<1_000).map { Array(generator.next(occurredAtMillis: origin + Int64($0) / 2).json.utf8) }
    let decoder = EventDecoder()
    let events: [Event] = corpus.compactMap { bytes in
        bytes.withUnsafeBytes { try? decoder.decode($0, nowMillis: nil).get() }
    }
    let comments = SyntheticEvents.comments.map(\.text)

    Benchmark("decode") { benchmark in
        for _ in benchmark.scaledIterations {
            for bytes in corpus { blackHole(bytes.withUnsafeBytes { decoder.decode($0, nowMillis: nil) }) }
        }
    }

    Benchmark("ingest (decode, validate, dedup)") { benchmark in
        for iteration in benchmark.scaledIterations {
            var ingestor = Ingestor()
            for bytes in corpus {
                blackHole(bytes.withUnsafeBytes { ingestor.ingest($0, nowMillis: nil) })
            }
            blackHole(iteration)
        }
    }

    Benchmark("window update (10 000 subjects, 1-minute windows)") { benchmark in
        for _ in benchmark.scaledIterations {
            var engine = WindowEngine()
            for event in events { blackHole(engine.add(event)) }
        }
    }

    Benchmark("sentiment (comment, language identified)") { benchmark in
        let scorer = MultilingualSentimentScorer()
        for _ in benchmark.scaledIterations {
            for index in 0..<1_000 { blackHole(scorer.analyze(comments[index % comments.count])) }
        }
    }

    Benchmark("replay (whole offline pipeline)") { benchmark in
        for _ in benchmark.scaledIterations {
            var replay = Replay(sourceName: "bench")
            for (index, bytes) in corpus.enumerated() {
                blackHole(bytes.withUnsafeBytes { replay.feed($0, offset: Int64(index)) })
            }
            blackHole(replay.finish())
        }
    }
}
