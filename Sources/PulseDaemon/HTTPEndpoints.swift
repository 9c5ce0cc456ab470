import CoreMetrics
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Prometheus
import PulseCore
import PulseKafka
import ServiceLifecycle

/// The operator endpoints: `/metrics` (Prometheus text), `/healthz` (the process answers) and `/readyz`
/// (partitions assigned, or 503 with the reason); with a ``Query``, also the query API (`/v1/status`,
/// `/v1/entities/{level}/{id}`, `/v1/alerts`, `/v1/top?metric=…`) and the dashboard at `/`.
public enum HTTPEndpoints {
    /// The query API's sources. With a `token`, `/v1/*` requires `Authorization: Bearer <token>`; the
    /// dashboard page itself is public and sends the token it finds in its URL fragment (`#token=…`).
    public struct Query: Sendable {
        public var live: LiveView
        /// `/v1/status`: a JSON object about the process.
        public var status: @Sendable () -> String
        public var token: String?

        public init(live: LiveView, status: @escaping @Sendable () -> String, token: String? = nil) {
            self.live = live
            self.status = status
            self.token = token
        }

        /// Constant-time comparison of the bearer token.
        func authorizes(_ header: String?) -> Bool {
            guard let token = self.token else { return true }
            guard let header, header.hasPrefix("Bearer ") else { return false }
            let given = Array(header.utf8.dropFirst("Bearer ".count))
            let expected = Array(token.utf8)
            guard given.count == expected.count else { return false }
            var difference: UInt8 = 0
            for index in given.indices { difference |= given[index] ^ expected[index] }
            return difference == 0
        }
    }

    /// Readiness as the pipeline sees it.
    public struct Readiness: Sendable {
        public var isReady: Bool
        public var reason: String

        public init(isReady: Bool, reason: String) {
            self.isReady = isReady
            self.reason = reason
        }
    }

    static func json(_ body: String, status: HTTPResponse.Status = .ok) -> Response {
        Response(
            status: status,
            headers: [.contentType: "application/json", .cacheControl: "no-store"],
            body: ResponseBody(byteBuffer: ByteBuffer(string: body))
        )
    }

    static func problem(_ status: HTTPResponse.Status, _ message: String) -> Response {
        Self.json(JSONText.object([("error", JSONText.quote(message))]), status: status)
    }

    public static func router(
        registry: PrometheusCollectorRegistry,
        readiness: @escaping @Sendable () -> Readiness,
        query: Query? = nil
    ) -> Router<BasicRequestContext> {
        let router = Router()
        if let query {
            router.get("/") { _, _ -> Response in
                Response(
                    status: .ok,
                    headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store"],
                    body: ResponseBody(byteBuffer: ByteBuffer(string: Dashboard.html))
                )
            }
            // Every /v1 route needs the bearer token when one is configured.
            let api = router.group("v1").add(middleware: BearerTokenMiddleware(query: query))
            api.get("status") { _, _ -> Response in
                return Self.json(query.status())
            }
            api.get("alerts") { _, _ -> Response in
                return Self.json(query.live.alerts())
            }
            api.get("entities/:level/:id") { _, context -> Response in
                guard let levelName = context.parameters.get("level"), let level = EntityLevel(rawValue: levelName)
                else { return Self.problem(.badRequest, "level must be subject or brand") }
                guard let id = context.parameters.get("id"), let body = query.live.entity(level: level, id: id) else {
                    return Self.problem(.notFound, "no metrics for this entity (yet)")
                }
                return Self.json(body)
            }
            api.get("top") { request, _ -> Response in
                let parameters = request.uri.queryParameters
                guard let metric = LiveView.Metric(rawValue: parameters.get("metric") ?? "engagement") else {
                    return Self.problem(.badRequest, "metric must be engagement, virality or negative_share")
                }
                guard let level = EntityLevel(rawValue: parameters.get("level") ?? "brand") else {
                    return Self.problem(.badRequest, "level must be subject or brand")
                }
                let limit = min(100, max(1, parameters.get("limit").flatMap { Int($0) } ?? 10))
                return Self.json(query.live.top(metric: metric, level: level, limit: limit))
            }
        }
        router.get("metrics") { _, _ -> Response in
            var buffer = [UInt8]()
            buffer.reserveCapacity(16_384)
            registry.emit(into: &buffer)
            return Response(
                status: .ok,
                headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: buffer))
            )
        }
        router.get("healthz") { _, _ -> String in "ok\n" }
        router.get("readyz") { _, _ -> Response in
            let state = readiness()
            return Response(
                status: state.isReady ? .ok : .serviceUnavailable,
                headers: [.contentType: "text/plain; charset=utf-8"],
                body: ResponseBody(byteBuffer: ByteBuffer(string: state.reason + "\n"))
            )
        }
        return router
    }

    /// The HTTP server as a service, listening on `host:port` (`http.listen`).
    public static func service(
        listen: String,
        registry: PrometheusCollectorRegistry,
        readiness: @escaping @Sendable () -> Readiness,
        query: Query? = nil,
        logger: Logger
    ) throws -> some Service {
        guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]) else {
            throw InvalidListenAddress(value: listen)
        }
        let host = String(listen[..<colon])
        return Application(
            router: self.router(registry: registry, readiness: readiness, query: query),
            configuration: .init(address: .hostname(host, port: port), serverName: "crowdpulse"),
            logger: logger
        )
    }

    /// Readiness of a consuming daemon: partitions assigned and consumer lag (from librdkafka statistics)
    /// at most `maxLag` messages.
    public static func readiness(of daemon: Daemon, maxLag: Int64 = 1000) -> @Sendable () -> Readiness {
        { [consumer = daemon.consumer, stats = daemon.stats] in
            let assignment = consumer.assignment
            let current = stats.current
            guard current.restoring == 0 else {
                return Readiness(isReady: false, reason: "restoring \(current.restoring) partitions from the changelog")
            }
            guard !assignment.isEmpty else { return Readiness(isReady: false, reason: "no partitions assigned yet") }
            let lags = current.consumerLag
            let lag = assignment.reduce(Int64(0)) { $0 + (lags[$1] ?? 0) }
            guard lag <= maxLag else {
                return Readiness(isReady: false, reason: "catching up: consumer lag \(lag) > \(maxLag) messages")
            }
            return Readiness(isReady: true, reason: "consuming \(assignment.count) partitions, lag \(lag)")
        }
    }
}

/// Refuses `/v1` requests without the configured bearer token.
struct BearerTokenMiddleware: RouterMiddleware {
    typealias Context = BasicRequestContext
    let query: HTTPEndpoints.Query

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        guard self.query.authorizes(request.headers[.authorization]) else {
            return HTTPEndpoints.problem(.unauthorized, "a bearer token is required")
        }
        return try await next(request, context)
    }
}

/// `http.listen` is not `host:port`.
public struct InvalidListenAddress: Error, CustomStringConvertible {
    public var value: String
    public var description: String { "http.listen must be host:port, got '\(self.value)'" }
}

/// Publishes readiness as the `crowdpulse_ready` gauge (1 ready, 0 not) every `interval`, so that
/// Prometheus can alert on an instance that stays unready (deploy/prometheus/crowdpulse-rules.yml).
public struct ReadinessGauge: Service {
    let readiness: @Sendable () -> HTTPEndpoints.Readiness
    let interval: Duration
    let gauge: CoreMetrics.Gauge

    public init(
        readiness: @escaping @Sendable () -> HTTPEndpoints.Readiness,
        interval: Duration = .seconds(5),
        factory: any MetricsFactory = MetricsSystem.factory
    ) {
        self.readiness = readiness
        self.interval = interval
        self.gauge = CoreMetrics.Gauge(label: "crowdpulse_ready", dimensions: [], factory: factory)
    }

    public func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            self.gauge.record(self.readiness().isReady ? 1 : 0)
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: self.interval) }
            } catch {
                break
            }
        }
    }
}
