import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Prometheus
import PulseKafka
import ServiceLifecycle

/// The operator endpoints: `/metrics` (Prometheus text), `/healthz` (the process answers) and `/readyz`
/// (partitions assigned, or 503 with the reason). Later work adds the query API and dashboard here.
public enum HTTPEndpoints {
    /// Readiness as the pipeline sees it.
    public struct Readiness: Sendable {
        public var isReady: Bool
        public var reason: String

        public init(isReady: Bool, reason: String) {
            self.isReady = isReady
            self.reason = reason
        }
    }

    public static func router(
        registry: PrometheusCollectorRegistry,
        readiness: @escaping @Sendable () -> Readiness
    ) -> Router<BasicRequestContext> {
        let router = Router()
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
        logger: Logger
    ) throws -> some Service {
        guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]) else {
            throw InvalidListenAddress(value: listen)
        }
        let host = String(listen[..<colon])
        return Application(
            router: self.router(registry: registry, readiness: readiness),
            configuration: .init(address: .hostname(host, port: port), serverName: "crowdpulse"),
            logger: logger
        )
    }

    /// Readiness of a consuming daemon: partitions assigned and consumer lag (from librdkafka statistics)
    /// at most `maxLag` messages.
    public static func readiness(of daemon: Daemon, maxLag: Int64 = 1000) -> @Sendable () -> Readiness {
        { [consumer = daemon.consumer, stats = daemon.stats] in
            let assignment = consumer.assignment
            guard !assignment.isEmpty else { return Readiness(isReady: false, reason: "no partitions assigned yet") }
            let lags = stats.current.consumerLag
            let lag = assignment.reduce(Int64(0)) { $0 + (lags[$1] ?? 0) }
            guard lag <= maxLag else {
                return Readiness(isReady: false, reason: "catching up: consumer lag \(lag) > \(maxLag) messages")
            }
            return Readiness(isReady: true, reason: "consuming \(assignment.count) partitions, lag \(lag)")
        }
    }
}

/// `http.listen` is not `host:port`.
public struct InvalidListenAddress: Error, CustomStringConvertible {
    public var value: String
    public var description: String { "http.listen must be host:port, got '\(self.value)'" }
}
