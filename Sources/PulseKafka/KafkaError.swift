import CRdKafka

/// The one error type of the Kafka binding.
///
/// Every case carries what an operator needs in a log line; ``kind`` is a bounded string that is safe
/// to use as a metric dimension.
public enum KafkaError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A configuration property was rejected by `rd_kafka_conf_set` (unknown key or invalid value).
    case invalidSetting(key: String, reason: String)
    /// `rd_kafka_new` (or a companion handle) could not be created.
    case clientCreationFailed(reason: String)
    /// An error reported by librdkafka, with its code, symbolic name and text.
    case librdkafka(Detail)
    /// A delivery report said that a produced message was not written.
    case deliveryFailed(topic: String, partition: Int32, Detail)
    /// The operation is not allowed in the client's current state (for example after `close()`).
    case invalidState(reason: String)

    /// librdkafka's description of one error.
    public struct Detail: Equatable, Sendable, CustomStringConvertible {
        /// The numeric `rd_kafka_resp_err_t` code.
        public var code: Int32
        /// The symbolic name, e.g. `_MSG_TIMED_OUT` or `PRODUCER_FENCED`.
        public var name: String
        /// Human-readable text.
        public var text: String
        /// The operation may succeed when retried.
        public var isRetriable: Bool
        /// The client instance is unusable and must be recreated.
        public var isFatal: Bool
        /// A transactional error that requires `abortTransaction()` before the producer can go on.
        public var requiresAbort: Bool

        public init(
            code: Int32,
            name: String,
            text: String,
            isRetriable: Bool = false,
            isFatal: Bool = false,
            requiresAbort: Bool = false
        ) {
            self.code = code
            self.name = name
            self.text = text
            self.isRetriable = isRetriable
            self.isFatal = isFatal
            self.requiresAbort = requiresAbort
        }

        public var description: String {
            var flags: [String] = []
            if self.isRetriable { flags.append("retriable") }
            if self.isFatal { flags.append("fatal") }
            if self.requiresAbort { flags.append("abortable") }
            let suffix = flags.isEmpty ? "" : " [\(flags.joined(separator: ","))]"
            return "\(self.name) (\(self.code)): \(self.text)\(suffix)"
        }
    }

    public var description: String {
        switch self {
        case .invalidSetting(let key, let reason):
            return "invalid Kafka setting '\(key)': \(reason)"
        case .clientCreationFailed(let reason):
            return "cannot create Kafka client: \(reason)"
        case .librdkafka(let detail):
            return "librdkafka error \(detail)"
        case .deliveryFailed(let topic, let partition, let detail):
            return "delivery to \(topic)[\(partition)] failed: \(detail)"
        case .invalidState(let reason):
            return "invalid client state: \(reason)"
        }
    }

    /// A bounded label for metrics: the case name, or librdkafka's symbolic error name.
    public var kind: String {
        switch self {
        case .invalidSetting: return "invalid_setting"
        case .clientCreationFailed: return "client_creation_failed"
        case .librdkafka(let detail): return detail.name
        case .deliveryFailed(_, _, let detail): return detail.name
        case .invalidState: return "invalid_state"
        }
    }

    /// The librdkafka detail, when this error came from librdkafka.
    public var detail: Detail? {
        switch self {
        case .librdkafka(let detail), .deliveryFailed(_, _, let detail): return detail
        case .invalidSetting, .clientCreationFailed, .invalidState: return nil
        }
    }

    /// Builds an error from a plain `rd_kafka_resp_err_t`.
    static func code(_ code: rd_kafka_resp_err_t, text: String? = nil) -> KafkaError {
        .librdkafka(Detail(code, text: text))
    }

    /// Builds an error from an `rd_kafka_error_t` and destroys it (the caller passes ownership).
    static func consuming(_ error: OpaquePointer) -> KafkaError {
        defer { rd_kafka_error_destroy(error) }
        return .librdkafka(
            Detail(
                code: Int32(rd_kafka_error_code(error).rawValue),
                name: String(cString: rd_kafka_error_name(error)),
                text: String(cString: rd_kafka_error_string(error)),
                isRetriable: rd_kafka_error_is_retriable(error) != 0,
                isFatal: rd_kafka_error_is_fatal(error) != 0,
                requiresAbort: rd_kafka_error_txn_requires_abort(error) != 0
            )
        )
    }
}

extension KafkaError.Detail {
    /// The detail of a plain response code; retriable and fatal flags are unknown for plain codes.
    init(_ code: rd_kafka_resp_err_t, text: String? = nil) {
        self.init(
            code: Int32(code.rawValue),
            name: String(cString: rd_kafka_err2name(code)),
            text: text ?? String(cString: rd_kafka_err2str(code))
        )
    }
}

extension String {
    /// Reads a NUL-terminated C buffer, as filled by librdkafka's `errstr` parameters.
    init(nulTerminated buffer: [CChar]) {
        self = buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }
}
