import Foundation
import PulseCore

/// A record on the internal repartition topic (keyed by brand): a brand partial from one input
/// partition's closed window, or that partition's watermark (sent to every repartition partition, so
/// each brand stage knows how far every source has got).
struct RepartitionMessage: Codable, Equatable {
    enum Kind: String, Codable {
        case partial, watermark
    }

    var kind: Kind
    /// The input partition that sent it (see ``IngestPipeline/sourceID(of:)``).
    var source: Int32
    var brand: String?
    var windowStart: Int64?
    var aggregate: WindowAggregate?
    var watermark: Int64?
    /// For partials: `false` for an updates-mode snapshot (absent means final).
    var final: Bool?
    /// The source closed its windows for idleness and holds nobody back until it speaks again.
    var idle: Bool?

    func encoded() -> [UInt8] {
        // Encoding plain values cannot fail.
        Array(try! JSONEncoder().encode(self))
    }

    static func decode(_ bytes: ArraySlice<UInt8>) -> RepartitionMessage? {
        try? JSONDecoder().decode(RepartitionMessage.self, from: Data(bytes))
    }
}
