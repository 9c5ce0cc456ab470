/// The offline pipeline behind `crowdpulse replay`: the same ingestion as the daemon, one partition,
/// no wall clock. Feed it records; it returns the output lines each one produces.
public struct Replay: Sendable {
    public private(set) var ingestor: Ingestor
    public private(set) var engine: WindowEngine
    public private(set) var metricsRecords = 0
    public private(set) var lateRecords = 0
    public private(set) var alertRecords = 0
    /// Every alert that started firing, for `crowdpulse backtest`.
    public private(set) var detections: [Backtest.Detection] = []
    /// Names the input in dead-letter headers (`crowdpulse.source.topic`).
    public let sourceName: String
    /// Crisis detection per level, fed the final metric records; `nil` turns detection off.
    public private(set) var detectors: [CrisisDetector]
    public var alertOptions: AlertOptions
    private let scorer = MultilingualSentimentScorer()
    /// Latest window end seen: at end of input, detection runs up to it (not beyond, which would
    /// resolve every alert for want of data).
    private var latestWindowEnd = Int64.min
    private var earliestWindowStart = Int64.max

    /// The event time covered by the final metric records so far (from the first window's start to the
    /// last window's end).
    public var eventTimeSpan: ClosedRange<Int64>? {
        self.earliestWindowStart <= self.latestWindowEnd ? self.earliestWindowStart...self.latestWindowEnd : nil
    }

    /// How alert records are stamped.
    public struct AlertOptions: Sendable {
        public var runbookURL: String?
        public var generatorURL: String
        public var resendIntervalMillis: Int64
        /// `emitted_at`: the wall clock when given (the CLI), else the evaluation's event time, which keeps
        /// replay output reproducible.
        public var clock: (@Sendable () -> Int64)?

        public init(
            runbookURL: String? = nil,
            generatorURL: String = "crowdpulse://replay",
            resendIntervalMillis: Int64 = 60_000,
            clock: (@Sendable () -> Int64)? = nil
        ) {
            self.runbookURL = runbookURL
            self.generatorURL = generatorURL
            self.resendIntervalMillis = resendIntervalMillis
            self.clock = clock
        }
    }

    public init(
        sourceName: String,
        ingestor: Ingestor = Ingestor(),
        engine: WindowEngine = WindowEngine(),
        detection: CrisisDetector.Configuration? = CrisisDetector.Configuration(),
        alertOptions: AlertOptions = AlertOptions()
    ) {
        self.sourceName = sourceName
        self.ingestor = ingestor
        self.engine = engine
        self.detectors =
            detection.map { configuration in
                EntityLevel.allCases.map { CrisisDetector(level: $0, configuration: configuration) }
            } ?? []
        self.alertOptions = alertOptions
    }

    /// Ingests one record.
    ///
    /// - Parameter offset: its position in the input (the line number), reported in dead-letter headers.
    public mutating func feed(_ bytes: UnsafeRawBufferPointer, offset: Int64) -> [OutputLine] {
        switch self.ingestor.ingest(bytes, nowMillis: nil) {
        case .accepted(let event):
            return self.lines(
                self.engine.add(event),
                original: bytes,
                offset: offset,
                detectThrough: self.engine.watermark
            )
        case .duplicate, .tombstone:
            return []
        case .rejected(let rejection):
            let headers = DeadLetter.headers(for: rejection, sourceTopic: self.sourceName, partition: 0, offset: offset)
            return [OutputLine(topic: "deadletter", key: nil, headers: headers, value: .original(Array(bytes)))]
        }
    }

    /// At end of input every open window closes.
    public mutating func finish() -> [OutputLine] {
        var lines = self.lines(
            self.engine.closeAll(),
            original: UnsafeRawBufferPointer(start: nil, count: 0),
            offset: -1,
            detectThrough: nil
        )
        lines += self.detect(through: self.latestWindowEnd)
        return lines
    }

    /// Runs detection up to `watermark` and renders the alert state changes.
    private mutating func detect(through watermark: Int64) -> [OutputLine] {
        guard watermark != Int64.min else { return [] }
        var lines: [OutputLine] = []
        for index in self.detectors.indices {
            for event in self.detectors[index].advance(to: watermark) {
                let record = AlertRecord(
                    event: event,
                    scorer: self.scorer,
                    watermark: event.at,
                    runbookURL: self.alertOptions.runbookURL,
                    generatorURL: self.alertOptions.generatorURL,
                    resendIntervalMillis: self.alertOptions.resendIntervalMillis
                )
                let emittedAt = self.alertOptions.clock?() ?? event.at
                self.alertRecords += 1
                if event.change == .firing { self.detections.append(Backtest.Detection(event)) }
                lines.append(
                    OutputLine(
                        topic: "alerts",
                        key: record.fingerprint,
                        headers: [],
                        value: .json(record.render(emittedAt: emittedAt))
                    )
                )
            }
        }
        return lines
    }

    private mutating func lines(
        _ outputs: [WindowEngine.Output],
        original: UnsafeRawBufferPointer,
        offset: Int64,
        detectThrough: Int64?
    ) -> [OutputLine] {
        var lines = outputs.map { output in
            switch output {
            case .metrics(let record):
                self.metricsRecords += 1
                if record.isFinal {
                    self.latestWindowEnd = max(self.latestWindowEnd, record.windowEnd)
                    self.earliestWindowStart = min(self.earliestWindowStart, record.windowStart)
                    for index in self.detectors.indices where self.detectors[index].level == record.key.level {
                        self.detectors[index].observe(record)
                    }
                }
                return OutputLine(topic: "metrics", key: record.recordKey, headers: [], value: .json(record.render()))
            case .late(let start, let end, let lateness):
                self.lateRecords += 1
                return OutputLine(
                    topic: "late",
                    key: nil,
                    headers: LateRecord.headers(
                        windowStart: start,
                        windowEnd: end,
                        latenessMillis: lateness,
                        sourceTopic: self.sourceName,
                        partition: 0,
                        offset: offset
                    ),
                    value: .original(Array(original))
                )
            case .brandPartial:
                preconditionFailure("replay aggregates brands locally")
            }
        }
        if let detectThrough, !outputs.isEmpty { lines += self.detect(through: detectThrough) }
        return lines
    }

    /// `events N, accepted N, dead-lettered N (reason N, …), duplicates N`.
    public var summary: String {
        let counters = self.ingestor.counters
        let reasons = Rejection.Reason.allCases.compactMap { reason in
            counters.rejected[reason].map { "\(reason.rawValue) \($0)" }
        }
        return "events \(counters.records), accepted \(counters.accepted), dead-lettered \(counters.rejectedTotal)"
            + (reasons.isEmpty ? "" : " (\(reasons.joined(separator: ", ")))") + ", duplicates \(counters.duplicates)"
            + ", late \(self.lateRecords), metric records \(self.metricsRecords), alert records \(self.alertRecords)"
    }
}

/// The late-record contract (`crowdpulse.late` topic): original bytes, these headers.
public enum LateRecord {
    public static func headers(
        windowStart: Int64,
        windowEnd: Int64,
        latenessMillis: Int64,
        sourceTopic: String,
        partition: Int32,
        offset: Int64
    ) -> [(name: String, value: String)] {
        [
            ("crowdpulse.window.start", RFC3339.format(millis: windowStart)),
            ("crowdpulse.window.end", RFC3339.format(millis: windowEnd)),
            ("crowdpulse.lateness_ms", String(latenessMillis)),
            (DeadLetter.sourceTopicHeader, sourceTopic),
            (DeadLetter.sourcePartitionHeader, String(partition)),
            (DeadLetter.sourceOffsetHeader, String(offset)),
        ].map { (name: $0.0, value: $0.1) }
    }
}
