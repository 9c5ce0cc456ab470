import Logging
import PulseCore

#if canImport(Glibc)
import Glibc
#endif

/// Writes one JSON object per log event to standard error (`--log-format json`), for log collectors:
/// `{"ts": "…", "level": "notice", "label": "crowdpulse", "message": "…", "source": "…", …metadata}`.
public struct JSONLogHandler: LogHandler {
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    private let label: String
    private let write: @Sendable (String) -> Void

    /// - Parameter write: where lines go; standard error by default.
    public init(label: String, write: @escaping @Sendable (String) -> Void = JSONLogHandler.standardError) {
        self.label = label
        self.write = write
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { self.metadata[key] }
        set { self.metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = self.metadata
        if let provided = self.metadataProvider?.get() { merged.merge(provided) { $1 } }
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        var members: [(String, String)] = [
            ("ts", JSONText.quote(RFC3339.format(millis: WallClock.nowMillis()))),
            ("level", JSONText.quote(event.level.rawValue)),
            ("label", JSONText.quote(self.label)),
            ("message", JSONText.quote(event.message.description)),
            ("source", JSONText.quote(event.source)),
        ]
        if let error = event.error { members.append(("error", JSONText.quote("\(error)"))) }
        for (key, value) in merged.sorted(by: { $0.key < $1.key }) {
            members.append((key, JSONText.quote(value.description)))
        }
        self.write(JSONText.object(members))
    }

    public static let standardError: @Sendable (String) -> Void = { line in
        // One write(2) per line, so that lines from several threads never interleave.
        var bytes = Array(line.utf8)
        bytes.append(0x0A)
        _ = bytes.withUnsafeBytes { Glibc.write(2, $0.baseAddress, $0.count) }
    }
}
