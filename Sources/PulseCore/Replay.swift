/// The offline pipeline behind `crowdpulse replay`: the same ingestion as the daemon, one partition,
/// no wall clock. Feed it records; it returns the output lines each one produces.
public struct Replay: Sendable {
    public private(set) var ingestor: Ingestor
    public private(set) var engine: WindowEngine
    public private(set) var metricsRecords = 0
    public private(set) var lateRecords = 0
    /// Names the input in dead-letter headers (`crowdpulse.source.topic`).
    public let sourceName: String

    public init(sourceName: String, ingestor: Ingestor = Ingestor(), engine: WindowEngine = WindowEngine()) {
        self.sourceName = sourceName
        self.ingestor = ingestor
        self.engine = engine
    }

    /// Ingests one record.
    ///
    /// - Parameter offset: its position in the input (the line number), reported in dead-letter headers.
    public mutating func feed(_ bytes: UnsafeRawBufferPointer, offset: Int64) -> [OutputLine] {
        switch self.ingestor.ingest(bytes, nowMillis: nil) {
        case .accepted(let event):
            return self.lines(self.engine.add(event), original: bytes, offset: offset)
        case .duplicate, .tombstone:
            return []
        case .rejected(let rejection):
            let headers = DeadLetter.headers(for: rejection, sourceTopic: self.sourceName, partition: 0, offset: offset)
            return [OutputLine(topic: "deadletter", key: nil, headers: headers, value: .original(Array(bytes)))]
        }
    }

    /// At end of input every open window closes.
    public mutating func finish() -> [OutputLine] {
        self.lines(self.engine.closeAll(), original: UnsafeRawBufferPointer(start: nil, count: 0), offset: -1)
    }

    private mutating func lines(
        _ outputs: [WindowEngine.Output],
        original: UnsafeRawBufferPointer,
        offset: Int64
    ) -> [OutputLine] {
        outputs.map { output in
            switch output {
            case .metrics(let record):
                self.metricsRecords += 1
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
    }

    /// `events N, accepted N, dead-lettered N (reason N, …), duplicates N`.
    public var summary: String {
        let counters = self.ingestor.counters
        let reasons = Rejection.Reason.allCases.compactMap { reason in
            counters.rejected[reason].map { "\(reason.rawValue) \($0)" }
        }
        return "events \(counters.records), accepted \(counters.accepted), dead-lettered \(counters.rejectedTotal)"
            + (reasons.isEmpty ? "" : " (\(reasons.joined(separator: ", ")))") + ", duplicates \(counters.duplicates)"
            + ", late \(self.lateRecords), metric records \(self.metricsRecords)"
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
