import PulseCore
import PulseDaemon
import PulseKafka
import ServiceLifecycle
import Testing

/// Produces `events` (keyed by subject) into the input topic of a fresh embedded broker (3 input
/// partitions, 2 per output topic), runs a `Daemon` on it, and reads `output` with an independent
/// consumer until `done` is satisfied or 90 seconds pass. Returns the records read, in order. With
/// `alerts` configured, the daemon's HTTP alert delivery runs too. `threads` is `processing.threads`.
func runEmbeddedDaemon(
    events: [(key: String, json: String)],
    groupID: String,
    threads: Int = Machine.cores,
    alerts: AlertDelivery.Configuration = AlertDelivery.Configuration(),
    metrics: IngestMetrics = IngestMetrics(),
    output: (TopicNames) -> String,
    done: ([(key: String, value: String)]) -> Bool
) async throws -> [(key: String, value: String)] {
    let names = TopicNames()
    let broker = try EmbeddedBroker(
        topics: names.provisioning(inputPartitions: 3, outputPartitions: 2).map {
            EmbeddedBroker.Topic($0.name, partitions: $0.partitions)
        },
        logger: daemonTestLogger
    )
    let client = KafkaClientConfiguration(bootstrapServers: broker.bootstrapServers)
    let producer = try KafkaProducer(configuration: .init(client: client), logger: daemonTestLogger)
    for event in events {
        try producer.send(ProducerRecord(topic: names.input[0], key: event.key, value: event.json))
    }
    try await producer.flush()
    #expect(producer.failedDeliveries == 0)

    var windows = WindowEngine.Configuration()
    windows.idleCloseMillis = 2000  // the stream ends: close what is left after 2 s of silence
    let daemon = try Daemon(
        configuration: {
            var configuration = Daemon.Configuration(
                client: client,
                groupID: groupID,
                windows: windows,
                sessionTimeout: .seconds(6)
            )
            configuration.alerts = alerts
            configuration.threads = threads
            return configuration
        }(),
        metrics: metrics,
        logger: daemonTestLogger
    )
    var services: [any Service] = [daemon.service]
    if let delivery = daemon.alertDelivery { services.append(delivery) }
    let group = ServiceGroup(services: services, logger: daemonTestLogger)
    let running = Task { try await group.run() }

    let reader = try KafkaConsumer(
        configuration: .init(
            client: client,
            groupID: "\(groupID)-reader",
            topics: [output(names)],
            sessionTimeout: .seconds(6)
        ),
        logger: daemonTestLogger
    )
    try reader.subscribe()
    var records: [(key: String, value: String)] = []
    let deadline = ContinuousClock.now + .seconds(90)
    while !done(records) && ContinuousClock.now < deadline {
        guard let batch = try await reader.nextBatch(maxWait: .seconds(1)) else { break }
        for message in batch {
            records.append(
                (String(decoding: message.key ?? [], as: UTF8.self), String(decoding: message.value, as: UTF8.self))
            )
        }
    }
    await reader.close()
    await group.triggerGracefulShutdown()
    try await running.value
    return records
}
