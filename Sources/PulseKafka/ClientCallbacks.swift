import CRdKafka
import Dispatch
import Logging

/// The Swift side of librdkafka's callbacks for one client, passed to C as the conf `opaque`.
///
/// The owning client keeps this object alive until after `rd_kafka_destroy`, so the unretained pointer
/// librdkafka holds is always valid. `@unchecked Sendable`: every stored property is set before the
/// client is created (`consumer`/`producer` right after, before any callback that reads them can run)
/// and only read afterwards.
final class ClientCallbacks: @unchecked Sendable {
    let logger: Logger
    let statistics: (@Sendable (KafkaStatistics) -> Void)?
    weak var consumer: KafkaConsumer?
    var delivery: (@Sendable (UnsafePointer<rd_kafka_message_t>) -> Void)?

    init(logger: Logger, statistics: (@Sendable (KafkaStatistics) -> Void)?) {
        self.logger = logger
        self.statistics = statistics
    }

    /// Points `conf`'s opaque at `self` and installs the log, error and statistics callbacks.
    func install(on conf: OpaquePointer) {
        rd_kafka_conf_set_opaque(conf, Unmanaged.passUnretained(self).toOpaque())
        rd_kafka_conf_set_log_cb(conf, kafkaLogCallback)
        rd_kafka_conf_set_error_cb(conf, kafkaErrorCallback)
        if self.statistics != nil {
            rd_kafka_conf_set_stats_cb(conf, kafkaStatisticsCallback)
        }
    }

    static func from(_ handle: OpaquePointer?) -> ClientCallbacks? {
        guard let handle, let opaque = rd_kafka_opaque(handle) else { return nil }
        return Unmanaged<ClientCallbacks>.fromOpaque(opaque).takeUnretainedValue()
    }
}

private func kafkaLogCallback(
    handle: OpaquePointer?,
    level: Int32,
    facility: UnsafePointer<CChar>?,
    message: UnsafePointer<CChar>?
) {
    guard let callbacks = ClientCallbacks.from(handle), let message else { return }
    // syslog levels: 0 emerg … 3 err, 4 warning, 5 notice, 6 info, 7 debug.
    let logLevel: Logger.Level
    switch level {
    case ...3: logLevel = .error
    case 4: logLevel = .warning
    case 5: logLevel = .notice
    case 6: logLevel = .info
    default: logLevel = .debug
    }
    callbacks.logger.log(
        level: logLevel,
        "librdkafka",
        metadata: [
            "kafka.facility": "\(facility.map { String(cString: $0) } ?? "")",
            "kafka.message": "\(String(cString: message))",
        ]
    )
}

private func kafkaErrorCallback(
    handle: OpaquePointer?,
    error: Int32,
    reason: UnsafePointer<CChar>?,
    opaque: UnsafeMutableRawPointer?
) {
    guard let opaque else { return }
    let callbacks = Unmanaged<ClientCallbacks>.fromOpaque(opaque).takeUnretainedValue()
    let code = rd_kafka_resp_err_t(rawValue: error)
    // Most client-level errors are transient (a broker connection dropped) and librdkafka recovers.
    callbacks.logger.warning(
        "Kafka client error",
        metadata: [
            "kafka.error": "\(String(cString: rd_kafka_err2name(code)))",
            "kafka.reason": "\(reason.map { String(cString: $0) } ?? "")",
        ]
    )
}

private func kafkaStatisticsCallback(
    handle: OpaquePointer?,
    json: UnsafeMutablePointer<CChar>?,
    length: Int,
    opaque: UnsafeMutableRawPointer?
) -> Int32 {
    guard let opaque, let json else { return 0 }
    let callbacks = Unmanaged<ClientCallbacks>.fromOpaque(opaque).takeUnretainedValue()
    let bytes = UnsafeRawBufferPointer(start: json, count: length)
    if let statistics = try? KafkaStatistics(json: Array(bytes)) {
        callbacks.statistics?(statistics)
    } else {
        callbacks.logger.debug("Unreadable librdkafka statistics")
    }
    return 0  // librdkafka frees the JSON.
}

/// Runs a blocking librdkafka call on a Dispatch thread so it never occupies the cooperative pool.
func offloadBlocking<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { (continuation: CheckedContinuation<T, Never>) in
        DispatchQueue.global().async { continuation.resume(returning: body()) }
    }
}

/// An `rd_kafka_t` pointer that may cross threads. `@unchecked Sendable`: librdkafka documents its client
/// instances as thread-safe, and the owner keeps the instance alive while closures holding this run.
struct SendableHandle: @unchecked Sendable {
    let pointer: OpaquePointer
}
