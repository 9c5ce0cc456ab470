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

    /// First byte of the binary format (version 1). JSON from an older instance starts with `{`.
    static let binaryMagic: UInt8 = 0xC1

    func encoded() -> [UInt8] {
        var writer = BinaryWriter(capacity: self.aggregate == nil ? 32 : 512)
        writer.byte(Self.binaryMagic)
        writer.byte(self.kind == .partial ? 0 : 1)
        writer.int(Int64(self.source))
        writer.optional(self.brand) { $0.string($1) }
        writer.optional(self.windowStart) { $0.int($1) }
        writer.optional(self.aggregate) { writer, aggregate in aggregate.write(to: &writer) }
        writer.optional(self.watermark) { $0.int($1) }
        writer.optional(self.final) { $0.bool($1) }
        writer.optional(self.idle) { $0.bool($1) }
        return writer.bytes
    }

    static func decode(_ bytes: ArraySlice<UInt8>) -> RepartitionMessage? {
        guard let first = bytes.first else { return nil }
        if first != Self.binaryMagic {
            // A rolling upgrade: instances of the previous version still write JSON.
            return try? JSONDecoder().decode(RepartitionMessage.self, from: Data(bytes))
        }
        do throws(BinaryDecodingError) {
            var reader = BinaryReader(Array(bytes), offset: 1)
            let kind: Kind
            switch try reader.byte() {
            case 0: kind = .partial
            case 1: kind = .watermark
            default: return nil
            }
            let source = try reader.int64()
            guard let source32 = Int32(exactly: source) else { return nil }
            let message = RepartitionMessage(
                kind: kind,
                source: source32,
                brand: try reader.optional { (reader: inout BinaryReader) throws(BinaryDecodingError) in
                    try reader.string()
                },
                windowStart: try reader.optional { (reader: inout BinaryReader) throws(BinaryDecodingError) in
                    try reader.int64()
                },
                aggregate: try reader.optional { (reader: inout BinaryReader) throws(BinaryDecodingError) in
                    try WindowAggregate(reading: &reader)
                },
                watermark: try reader.optional { (reader: inout BinaryReader) throws(BinaryDecodingError) in
                    try reader.int64()
                },
                final: try reader.optional { (reader: inout BinaryReader) throws(BinaryDecodingError) in
                    try reader.bool()
                },
                idle: try reader.optional { (reader: inout BinaryReader) throws(BinaryDecodingError) in
                    try reader.bool()
                }
            )
            return reader.isAtEnd ? message : nil
        } catch {
            return nil
        }
    }
}
