import Foundation
import PulseCore

/// The labels file of `crowdpulse backtest`.
extension Backtest {
    /// A labels file that cannot be read.
    public struct LabelError: Error, CustomStringConvertible {
        public var description: String
    }

    /// Reads labelled windows from either
    /// - NAB's `combined_windows.json` shape: `{"name": [["start", "end"], …], …}`, where `name` is an entity
    ///   (optionally `subject:ID` or `brand:ID`) or `*` for the whole stream; or
    /// - a JSON array, or JSON lines, of `{"start": …, "end": …, "level"?: "subject"|"brand", "entity"?: …}`.
    ///
    /// Times are RFC 3339, NAB's `2014-02-19 10:50:00.000000` (UTC), or epoch milliseconds.
    public static func parseLabels(_ text: String) throws(LabelError) -> [Window] {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else { return [] }
        var objects: [Any] = []
        if let whole = try? JSONSerialization.jsonObject(with: Data(trimmed.utf8)) {
            if let map = whole as? [String: Any], map["start"] == nil {
                var windows: [Window] = []
                for (name, value) in map.sorted(by: { $0.key < $1.key }) {
                    guard let pairs = value as? [Any] else {
                        throw LabelError(description: "\(name): not a list of windows")
                    }
                    let (level, entity) = Self.scope(name)
                    for pair in pairs {
                        guard let bounds = pair as? [Any], bounds.count == 2 else {
                            throw LabelError(description: "\(name): a window is not a [start, end] pair")
                        }
                        windows.append(
                            Window(
                                start: try Self.time(bounds[0], name),
                                end: try Self.time(bounds[1], name),
                                level: level,
                                entity: entity
                            )
                        )
                    }
                }
                return windows
            }
            objects = (whole as? [Any]) ?? [whole]
        } else {
            for (number, line) in trimmed.split(separator: "\n").enumerated() {
                let line = line.trimmingCharacters(in: .whitespaces)
                guard !line.isEmpty else { continue }
                guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) else {
                    throw LabelError(description: "line \(number + 1): not JSON")
                }
                objects.append(object)
            }
        }
        return try objects.enumerated().map { (index, item) throws(LabelError) -> Window in
            let where_ = "label \(index + 1)"
            guard let object = item as? [String: Any], let start = object["start"], let end = object["end"] else {
                throw LabelError(description: "\(where_): needs start and end")
            }
            var level: EntityLevel? = nil
            if let text = object["level"] {
                guard let name = text as? String, let parsed = EntityLevel(rawValue: name) else {
                    throw LabelError(description: "\(where_): level must be subject or brand")
                }
                level = parsed
            }
            let window = Window(
                start: try Self.time(start, where_),
                end: try Self.time(end, where_),
                level: level,
                entity: object["entity"] as? String
            )
            guard window.end > window.start else { throw LabelError(description: "\(where_): end is not after start") }
            return window
        }
    }

    static func scope(_ name: String) -> (EntityLevel?, String?) {
        if name == "*" || name.isEmpty { return (nil, nil) }
        for level in EntityLevel.allCases where name.hasPrefix(level.rawValue + ":") {
            return (level, String(name.dropFirst(level.rawValue.count + 1)))
        }
        return (nil, name)
    }

    static func time(_ value: Any, _ context: String) throws(LabelError) -> Int64 {
        if let number = value as? NSNumber, !(value is String) { return number.int64Value }
        guard let text = value as? String else { throw LabelError(description: "\(context): a time is not text") }
        if let millis = RFC3339.parseMillis(text) { return millis }
        // NAB: "2014-02-19 10:50:00.000000", UTC.
        var nab = text.replacingOccurrences(of: " ", with: "T")
        if let dot = nab.firstIndex(of: ".") {
            nab = String(nab[..<dot]) + String(nab[dot...].prefix(4))
        }
        if let millis = RFC3339.parseMillis(nab + "Z") { return millis }
        throw LabelError(description: "\(context): '\(text)' is not an RFC 3339 or NAB time")
    }
}
