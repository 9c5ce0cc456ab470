import ArgumentParser
import Foundation
import Logging
import PulseCore
import PulseDaemon
import PulseKafka
import ServiceLifecycle
import UnixSignals

/// `crowdpulse demo`: embedded broker, synthetic live traffic and the daemon, in one process.
struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the daemon on an embedded broker with synthetic live traffic (Ctrl-C to stop)."
    )

    @OptionGroup var common: CommonOptions

    @Option(help: "Synthetic events per second.")
    var rate: Int = 500

    @Option(help: "Stop after this many seconds (0: run until Ctrl-C).")
    var duration: Int = 0

    @Option(help: "Partitions of the input topic.")
    var partitions: Int32 = 6

    @Option(help: "Metrics window in seconds (short, so that records appear within seconds; run uses 60).")
    var window: Int = 10

    @Option(help: "Address of the HTTP endpoints (/metrics, /healthz, /readyz), host:port.")
    var httpListen: String = "127.0.0.1:9720"

    @Option(help: "Share of synthetic records that are invalid or duplicates, to show dead-lettering (0–1).")
    var faults: Double = 0.02

    @Option(
        help: """
            Scripted incidents: crises (an organic crisis on brand-7 after a minute, a coordinated attack on \
            brand-13 after two) or none.
            """
    )
    var scenario: String = "crises"

    func run() async throws {
        guard ["crises", "none"].contains(self.scenario) else {
            throw ValidationError("--scenario must be crises or none")
        }
        var common = self.common
        if common.logLevel == .info { common.logLevel = .notice }  // keep the demo's stdout readable
        let logger = common.bootstrapLogging()
        let names = TopicNames()
        let broker = try EmbeddedBroker(
            brokers: 1,
            topics: names.provisioning(inputPartitions: self.partitions, outputPartitions: self.partitions).map {
                EmbeddedBroker.Topic($0.name, partitions: $0.partitions)
            },
            logger: logger
        )
        print("CrowdPulse demo: embedded broker at bootstrap.servers=\(broker.bootstrapServers)")
        print("Producing \(self.rate) synthetic events/s to \(names.input[0]); the daemon reports every 5 seconds.")
        if self.scenario == "crises" {
            print(
                "Incidents: an organic crisis on brand-7 in about a minute, a coordinated attack on brand-13 in two;"
                    + " alerts are printed as they fire and resolve."
            )
        }
        print("Read along with: kcat -b \(broker.bootstrapServers) -t \(names.input[0]) -C -o end")
        print("Dead letters:    kcat -b \(broker.bootstrapServers) -t \(names.deadLetter) -C -f '%h\\n%s\\n'")
        fflush(nil)

        let client = KafkaClientConfiguration(bootstrapServers: broker.bootstrapServers, clientID: "crowdpulse-demo")
        let producer = try KafkaProducer(configuration: .init(client: client), logger: logger)
        let registry = bootstrapPrometheus()
        let stats = ConsumptionStats()
        let window = Int64(max(1, self.window)) * 1000
        var configuration = Daemon.Configuration(
            client: client,
            groupID: "crowdpulse-demo",
            topics: names,
            windows: WindowEngine.Configuration(
                window: .tumbling(window),
                graceMillis: 5_000,
                idleCloseMillis: 10_000
            ),
            sessionTimeout: .seconds(6)
        )
        // Detection on demo time: a minute's window evaluated every metric window, quick to fire and resolve.
        configuration.detection = CrisisDetector.Configuration(
            windowMillis: max(60_000 / window, 1) * window,
            stepMillis: window,
            lifecycle: .init(forMillis: window, keepFiringForMillis: 60_000, cooldownMillis: 120_000)
        )
        Machine.startReleasingFreeMemory()
        let daemon = try Daemon(
            configuration: configuration,
            stats: stats,
            logger: logger,
            externalURL: "http://\(self.httpListen)",
            onAlert: { alert in
                print(Self.describe(alert))
                fflush(nil)
            },
            onEvent: { event, _ in
                if event.kind == .comment { stats.update { $0.lastEvent = event } }
            }
        )
        let http = try HTTPEndpoints.service(
            listen: self.httpListen,
            registry: registry,
            readiness: HTTPEndpoints.readiness(of: daemon),
            query: .init(live: daemon.live, status: { daemon.statusJSON() }),
            logger: logger
        )
        print("Dashboard:       http://\(self.httpListen)/")
        print("Metrics:         curl http://\(self.httpListen)/metrics")
        print(
            "Metric records:  kcat -b \(broker.bootstrapServers) -t \(names.metrics) -C -o end   (\(self.window) s windows, 5 s grace)"
        )
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: http),
            .init(service: ReadinessGauge(readiness: HTTPEndpoints.readiness(of: daemon))),
            .init(
                service: SyntheticProducerService(
                    producer: producer,
                    topic: names.input[0],
                    eventsPerSecond: self.rate,
                    faults: self.faults,
                    incidents: self.scenario == "crises" ? IncidentScript.crises(origin: WallClock.nowMillis()) : nil,
                    logger: logger
                )
            ),
            .init(service: daemon.service),
            .init(
                service: ProgressReporter(stats: stats, interval: .seconds(5), logger: logger) { line in
                    print(line)
                    fflush(nil)
                }
            ),
        ]
        if let delivery = daemon.alertDelivery { services.append(.init(service: delivery)) }
        if self.duration > 0 {
            services.append(
                .init(
                    service: Timer(after: .seconds(self.duration)),
                    successTerminationBehavior: .gracefullyShutdownGroup
                )
            )
        }
        let group = ServiceGroup(
            configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        )
        try await group.run()
        let final = stats.current
        print(
            "demo finished: consumed \(final.messages) events, accepted \(final.accepted), dead-lettered \(final.deadLettered)"
        )
        withExtendedLifetime(broker) {}
    }
}

/// Returns after a delay, to end the demo after `--duration`.
struct Timer: Service {
    let after: Duration
    init(after: Duration) { self.after = after }
    func run() async throws {
        try? await cancelWhenGracefulShutdown { try await Task.sleep(for: self.after) }
    }
}

extension Demo {
    /// One line per alert state change for the demo's console.
    static func describe(_ alert: AlertRecord) -> String {
        let event = alert.event
        let authenticity = event.evaluation.authenticity
        let percent = { (value: Double) in "\(Int((value * 100).rounded()))%" }
        let change = event.change.rawValue.uppercased()
        return
            "ALERT \(change) \(event.alertname) \(event.level.rawValue) \(event.entity) [\(event.severity.rawValue)] "
            + "\(authenticity.verdict.rawValue): coordinated \(percent(authenticity.coordinatedShare)), "
            + "new accounts \(percent(authenticity.newAccountShare)), "
            + "verified customers \(percent(authenticity.verifiedCustomerShare)), "
            + "\(event.evaluation.negative) negative of \(event.evaluation.scored)"
    }
}
