import Benchmark
import PulseCore

/// The core's hot paths, one event per scaled iteration (so times are per event and throughput is events
/// per second): decoding, ingestion (decode + validate + dedup), the window update, sentiment scoring of
/// a comment, and the whole offline pipeline (replay). State persists across iterations, as in a stream.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        scalingFactor: .kilo,
        maxDuration: .seconds(3),
        maxIterations: 100
    )
    let origin: Int64 = 1_790_000_000_000
    var generator = SyntheticEvents()
    // Standard events (60% likes, 20% comments in 15 languages, 15% shares, 5% purchases), 2 000/s of
    // event time; more than the longest run consumes, so no id repeats and time only moves forward.
    let count = 110_000
    let corpus: [[UInt8]] = (0..<count).map {
        Array(generator.next(occurredAtMillis: origin + Int64($0) / 2).json.utf8)
    }
    let decoder = EventDecoder()
    let events: [Event] = corpus.compactMap { bytes in
        bytes.withUnsafeBytes { try? decoder.decode($0, nowMillis: nil).get() }
    }
    let comments = SyntheticEvents.comments.map(\.text)

    Benchmark("decode") { benchmark in
        for index in benchmark.scaledIterations {
            blackHole(corpus[index % count].withUnsafeBytes { decoder.decode($0, nowMillis: nil) })
        }
    }

    Benchmark("ingest (decode, validate, dedup)") { benchmark in
        var ingestor = Ingestor()
        for index in benchmark.scaledIterations {
            blackHole(corpus[index % count].withUnsafeBytes { ingestor.ingest($0, nowMillis: nil) })
        }
    }

    Benchmark("window update (10 000 subjects, 1-minute windows)") { benchmark in
        var engine = WindowEngine()
        for index in benchmark.scaledIterations { blackHole(engine.add(events[index % events.count])) }
    }

    Benchmark("sentiment (comment, language identified)") { benchmark in
        let scorer = MultilingualSentimentScorer()
        for index in benchmark.scaledIterations { blackHole(scorer.analyze(comments[index % comments.count])) }
    }

    Benchmark("replay (whole offline pipeline)") { benchmark in
        var replay = Replay(sourceName: "bench")
        for index in benchmark.scaledIterations {
            blackHole(corpus[index % count].withUnsafeBytes { replay.feed($0, offset: Int64(index)) })
        }
    }
}
