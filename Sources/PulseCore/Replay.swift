/// The offline pipeline behind `crowdpulse replay`: the same ingestion as the daemon, one partition,
/// no wall clock. Feed it records; it returns the output lines each one produces.
public struct Replay: Sendable {
    public private(set) var ingestor: Ingestor
    /// Names the input in dead-letter headers (`crowdpulse.source.topic`).
    public let sourceName: String

    public init(sourceName: String, ingestor: Ingestor = Ingestor()) {
        self.sourceName = sourceName
        self.ingestor = ingestor
    }

    /// Ingests one record.
    ///
    /// - Parameter offset: its position in the input (the line number), reported in dead-letter headers.
    public mutating func feed(_ bytes: UnsafeRawBufferPointer, offset: Int64) -> [OutputLine] {
        switch self.ingestor.ingest(bytes, nowMillis: nil) {
        case .accepted, .duplicate, .tombstone:
            return []
        case .rejected(let rejection):
            let headers = DeadLetter.headers(for: rejection, sourceTopic: self.sourceName, partition: 0, offset: offset)
            return [OutputLine(topic: "deadletter", key: nil, headers: headers, value: .original(Array(bytes)))]
        }
    }

    /// At end of input: later stages close their open windows here.
    public mutating func finish() -> [OutputLine] { [] }

    /// `events N, accepted N, dead-lettered N (reason N, …), duplicates N`.
    public var summary: String {
        let counters = self.ingestor.counters
        let reasons = Rejection.Reason.allCases.compactMap { reason in
            counters.rejected[reason].map { "\(reason.rawValue) \($0)" }
        }
        return "events \(counters.records), accepted \(counters.accepted), dead-lettered \(counters.rejectedTotal)"
            + (reasons.isEmpty ? "" : " (\(reasons.joined(separator: ", ")))") + ", duplicates \(counters.duplicates)"
    }
}
