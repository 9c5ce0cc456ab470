import AsyncHTTPClient
import CoreMetrics
import Logging
import NIOCore
import NIOHTTP1
import PulseCore
import ServiceLifecycle
import Synchronization

/// Delivers alert state changes to Alertmanager (`POST {base}/api/v2/alerts`) and to a webhook
/// (Alertmanager's webhook v4 payload), on the schedule of ``AlertOutbox``.
///
/// ``submit(_:)`` only appends to the outbox under a lock, so event processing never waits for a
/// receiver; the service's own task makes the HTTP requests (receivers in parallel, one request at a
/// time each) with AsyncHTTPClient and retries with backoff. An outage of a receiver delays its
/// alerts until it is back; it loses none (see ``AlertOutbox`` for the bound on queued webhook
/// notifications). On graceful shutdown one last round is attempted within the request timeout.
///
/// - Important: the outbox lives in memory: alerts owed to a receiver when the process dies are not
///   re-sent by the next instance (the alerts topic has them all).
public final class AlertDelivery: Service, Sendable {
    /// The `alerts.*` delivery keys.
    public struct Configuration: Sendable, Equatable {
        /// Alertmanager base URLs (`alerts.alertmanager.url`); `/api/v2/alerts` is appended.
        public var alertmanagerURLs: [String] = []
        /// `alerts.webhook.url`: receives webhook v4 notifications.
        public var webhookURL: String?
        public var runbookURL: String?
        public var resendIntervalMillis: Int64 = 60_000
        public var resolvedResendMillis: Int64 = 300_000
        /// Per request.
        public var timeoutMillis: Int64 = 10_000
        public var maxBackoffMillis: Int64 = 60_000
        /// Webhook notifications that may wait for a receiver that is down.
        public var maxQueued = 10_000

        public init() {}

        /// Whether anything is to be delivered over HTTP.
        public var isEnabled: Bool { !self.alertmanagerURLs.isEmpty || self.webhookURL != nil }
    }

    public let configuration: Configuration
    private let outbox: Mutex<AlertOutbox>
    private let wakeup: AsyncStream<Void>
    private let continuation: AsyncStream<Void>.Continuation
    private let client: HTTPClient
    private let logger: Logger
    private let nowMillis: @Sendable () -> Int64
    private let outcomes: [String: Counter]
    private let dropped: Counter
    private let queued: Gauge
    private let droppedSoFar = Mutex(0)

    /// - Parameters:
    ///   - externalURL: `externalURL` of webhook notifications (e.g. the daemon's HTTP address).
    ///   - nowMillis: the wall clock (injected for tests).
    public init(
        configuration: Configuration,
        externalURL: String = "crowdpulse://",
        client: HTTPClient = .shared,
        logger: Logger,
        metricsFactory: any MetricsFactory = MetricsSystem.factory,
        nowMillis: @escaping @Sendable () -> Int64 = WallClock.nowMillis
    ) {
        self.configuration = configuration
        self.outbox = Mutex(
            AlertOutbox(
                configuration: .init(
                    alertmanagers: configuration.alertmanagerURLs.count,
                    webhook: configuration.webhookURL != nil,
                    resendIntervalMillis: configuration.resendIntervalMillis,
                    resolvedResendMillis: configuration.resolvedResendMillis,
                    maxBackoffMillis: configuration.maxBackoffMillis,
                    maxQueued: configuration.maxQueued,
                    externalURL: externalURL
                )
            )
        )
        (self.wakeup, self.continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        self.client = client
        self.logger = logger
        self.nowMillis = nowMillis
        var outcomes: [String: Counter] = [:]
        for receiver in ["alertmanager", "webhook"] {
            for outcome in ["delivered", "retry", "rejected"] {
                outcomes["\(receiver)/\(outcome)"] = Counter(
                    label: "crowdpulse_alert_deliveries_total",
                    dimensions: [("receiver", receiver), ("outcome", outcome)],
                    factory: metricsFactory
                )
            }
        }
        self.outcomes = outcomes
        self.dropped = Counter(
            label: "crowdpulse_alert_notifications_dropped_total",
            dimensions: [],
            factory: metricsFactory
        )
        self.queued = Gauge(label: "crowdpulse_alert_notifications_queued", dimensions: [], factory: metricsFactory)
    }

    /// Hands over one alert state change. Never blocks on I/O.
    public func submit(_ record: AlertRecord) {
        let now = self.nowMillis()
        self.outbox.withLock { $0.submit(record, now: now) }
        self.continuation.yield()
    }

    public func run() async throws {
        await withTaskCancellationOrGracefulShutdownHandler {
            await self.loop()
        } onCancelOrGracefulShutdown: {
            self.continuation.finish()
        }
        // One last round for whatever is owed (bounded by the request timeout).
        await self.round()
    }

    /// Runs a round whenever woken: by ``submit(_:)`` or by a one-shot timer set for the next resend or
    /// retry (at most a second ahead, so a changed schedule is noticed).
    private func loop() async {
        var timer: Task<Void, Never>? = nil
        self.continuation.yield()
        for await _ in self.wakeup {
            await self.round()
            let now = self.nowMillis()
            let next = self.outbox.withLock { $0.nextWakeup(now: now) }
            let delay = max(5, min(1000, (next ?? now + 1000) - now))
            timer?.cancel()
            timer = Task { [continuation = self.continuation] in
                do {
                    try await Task.sleep(for: .milliseconds(delay))
                    continuation.yield()
                } catch {}
            }
        }
        timer?.cancel()
    }

    /// Makes every request that is due, in parallel, and records the outcomes.
    private func round() async {
        let now = self.nowMillis()
        let requests = self.outbox.withLock { $0.due(now: now) }
        guard !requests.isEmpty else { return }
        await withTaskGroup(of: (AlertOutbox.Request, AlertOutbox.Outcome).self) { group in
            for request in requests {
                group.addTask { (request, await self.send(request)) }
            }
            for await (request, outcome) in group {
                let finished = self.nowMillis()
                let (dropped, queued) = self.outbox.withLock { outbox in
                    outbox.complete(request, outcome: outcome, now: finished)
                    return (outbox.dropped, outbox.queued.webhook)
                }
                self.queued.record(queued)
                let newlyDropped = self.droppedSoFar.withLock { seen in
                    defer { seen = dropped }
                    return dropped - seen
                }
                if newlyDropped > 0 {
                    self.dropped.increment(by: newlyDropped)
                    self.logger.warning(
                        "Webhook queue full: oldest notifications dropped",
                        metadata: ["count": "\(newlyDropped)", "max_queued": "\(self.configuration.maxQueued)"]
                    )
                }
            }
        }
    }

    private func url(of receiver: AlertOutbox.Receiver) -> String {
        switch receiver {
        case .alertmanager(let index):
            var base = self.configuration.alertmanagerURLs[index]
            while base.hasSuffix("/") { base.removeLast() }
            return base + "/api/v2/alerts"
        case .webhook:
            return self.configuration.webhookURL ?? ""
        }
    }

    private func send(_ request: AlertOutbox.Request) async -> AlertOutbox.Outcome {
        let url = self.url(of: request.receiver)
        let name: String
        if case .webhook = request.receiver { name = "webhook" } else { name = "alertmanager" }
        var http = HTTPClientRequest(url: url)
        http.method = .POST
        http.headers.add(name: "Content-Type", value: "application/json")
        http.headers.add(name: "User-Agent", value: "crowdpulse")
        http.body = .bytes(ByteBuffer(string: request.body))
        let outcome: AlertOutbox.Outcome
        var detail: Logger.Metadata = ["receiver": "\(name)", "url": "\(Settings.redactURL(url))"]
        do {
            let response = try await self.client.execute(
                http,
                timeout: .milliseconds(self.configuration.timeoutMillis)
            )
            _ = try? await response.body.collect(upTo: 64 * 1024)
            let code = response.status.code
            detail["status"] = "\(code)"
            switch code {
            case 200..<300: outcome = .delivered
            case 408, 429, 500...: outcome = .retry
            default: outcome = .rejected
            }
        } catch {
            detail["error"] = "\(error)"
            outcome = .retry
        }
        self.outcomes["\(name)/\(outcome)"]?.increment()
        switch outcome {
        case .delivered:
            self.logger.debug("Alert notification delivered", metadata: detail)
        case .retry:
            self.logger.warning("Alert receiver unavailable; will retry", metadata: detail)
        case .rejected:
            self.logger.error("Alert receiver rejected a notification; not retried", metadata: detail)
        }
        return outcome
    }
}
