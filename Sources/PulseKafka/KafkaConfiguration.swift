import CRdKafka

/// Settings shared by every Kafka client we create.
///
/// Only what CrowdPulse tunes is typed; any other librdkafka property (SASL, SSL, timeouts, …) goes
/// through ``librdkafka`` unchanged. Typed values are applied first, so a pass-through key with the same
/// name wins: the operator always has the last word.
public struct KafkaClientConfiguration: Sendable {
    /// `bootstrap.servers`: comma-separated `host:port` list.
    public var bootstrapServers: String
    /// `client.id`, shown in broker logs and metrics.
    public var clientID: String
    /// How often librdkafka emits its statistics JSON (`statistics.interval.ms`); `nil` disables them.
    public var statisticsInterval: Duration?
    /// Any librdkafka property, passed through as is and validated by `rd_kafka_conf_set`.
    public var librdkafka: [String: String]

    public init(
        bootstrapServers: String,
        clientID: String = "crowdpulse",
        statisticsInterval: Duration? = nil,
        librdkafka: [String: String] = [:]
    ) {
        self.bootstrapServers = bootstrapServers
        self.clientID = clientID
        self.statisticsInterval = statisticsInterval
        self.librdkafka = librdkafka
    }

    /// The properties this configuration sets, in application order (typed first, pass-through last).
    var properties: [(String, String)] {
        var result: [(String, String)] = [
            ("bootstrap.servers", self.bootstrapServers),
            ("client.id", self.clientID),
        ]
        if let interval = self.statisticsInterval {
            result.append(("statistics.interval.ms", String(interval.milliseconds)))
        }
        // Sorted so that errors are deterministic when several keys are wrong.
        result.append(contentsOf: self.librdkafka.sorted { $0.key < $1.key }.map { ($0.key, $0.value) })
        return result
    }
}

extension Duration {
    /// Whole milliseconds, rounded down; used for librdkafka's `*.ms` properties and timeouts.
    var milliseconds: Int64 {
        let (seconds, attoseconds) = self.components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }

    /// Milliseconds clamped into a C `int` timeout.
    var timeoutMilliseconds: Int32 {
        Int32(clamping: self.milliseconds)
    }
}

/// Owns an `rd_kafka_topic_conf_t` (created on the first setting) until it is handed to `rd_kafka_topic_new`.
struct TopicConfBuilder: ~Copyable {
    private var pointer: OpaquePointer?

    init() {}

    deinit {
        if let pointer = self.pointer { rd_kafka_topic_conf_destroy(pointer) }
    }

    /// Sets one topic-level property, throwing ``KafkaError/invalidSetting(key:reason:)`` that names it and
    /// the topic.
    mutating func set(_ key: String, _ value: String, topic: String) throws(KafkaError) {
        if self.pointer == nil { self.pointer = rd_kafka_topic_conf_new() }
        var errorText = [CChar](repeating: 0, count: 512)
        guard rd_kafka_topic_conf_set(self.pointer, key, value, &errorText, errorText.count) == RD_KAFKA_CONF_OK else {
            throw .invalidSetting(key: "\(key) (topic \(topic))", reason: String(nulTerminated: errorText))
        }
    }

    /// Gives up ownership (`nil` when nothing was set: the client's defaults).
    mutating func take() -> OpaquePointer? {
        defer { self.pointer = nil }
        return self.pointer
    }
}

/// Owns an `rd_kafka_conf_t` until it is handed to `rd_kafka_new`.
struct ConfBuilder: ~Copyable {
    private(set) var pointer: OpaquePointer?

    init() {
        self.pointer = rd_kafka_conf_new()
    }

    deinit {
        if let pointer = self.pointer { rd_kafka_conf_destroy(pointer) }
    }

    /// Sets one property, throwing ``KafkaError/invalidSetting(key:reason:)`` that names it.
    ///
    /// Values of keys that look secret are never echoed in the error.
    mutating func set(_ key: String, _ value: String) throws(KafkaError) {
        var errorText = [CChar](repeating: 0, count: 512)
        let result = rd_kafka_conf_set(self.pointer, key, value, &errorText, errorText.count)
        guard result == RD_KAFKA_CONF_OK else {
            throw .invalidSetting(key: key, reason: String(nulTerminated: errorText))
        }
    }

    mutating func set(_ properties: [(String, String)]) throws(KafkaError) {
        for (key, value) in properties {
            try self.set(key, value)
        }
    }

    /// Gives up ownership: librdkafka owns the conf once `rd_kafka_new` succeeds.
    mutating func take() -> OpaquePointer? {
        defer { self.pointer = nil }
        return self.pointer
    }

    /// Creates a client. On failure the conf stays owned by this builder (and is destroyed with it).
    mutating func makeClient(type: rd_kafka_type_t) throws(KafkaError) -> OpaquePointer {
        var errorText = [CChar](repeating: 0, count: 512)
        guard let handle = rd_kafka_new(type, self.pointer, &errorText, errorText.count) else {
            throw .clientCreationFailed(reason: String(nulTerminated: errorText))
        }
        self.pointer = nil  // rd_kafka_new took ownership.
        return handle
    }
}
