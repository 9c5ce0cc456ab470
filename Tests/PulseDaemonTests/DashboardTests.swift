import Foundation
import Hummingbird
import Logging
import NIOCore
import Prometheus
import PulseCore
import PulseDaemon
import Synchronization
import Testing

/// The dashboard in headless Chromium (Debian package `chromium`, installed by `make test`): the page's
/// script must fetch the query API and render the top tables and the alert timeline.
@Suite("Dashboard in headless Chromium", .serialized)
struct DashboardTests {
    static func chromium() throws -> String {
        for candidate in ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"]
        where FileManager.default.isExecutableFile(atPath: candidate) {
            return candidate
        }
        throw MissingBinary(description: "no chromium: run `make test` (it installs it) or apt-get install chromium")
    }

    /// Serves the router of a daemon with `live` on 127.0.0.1 and runs `body` with the base URL.
    static func serving(_ live: LiveView, token: String? = nil, _ body: (String) async throws -> Void) async throws {
        let router = HTTPEndpoints.router(
            registry: PrometheusCollectorRegistry(),
            readiness: { .init(isReady: true, reason: "ok") },
            query: .init(
                live: live,
                status: { #"{"events":123456,"partitions":6,"consumer_lag":12}"# },
                token: token
            )
        )
        let (stream, continuation) = AsyncStream.makeStream(of: Int.self)
        let app = Application(
            router: router,
            configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { continuation.yield($0.localAddress?.port ?? -1) },
            logger: Logger(label: "dashboard", factory: { _ in SwiftLogNoOpLogHandler() })
        )
        let server = Task { try await app.runService() }
        defer { server.cancel() }
        var ports = stream.makeAsyncIterator()
        let port = try #require(await ports.next())
        try await body("http://127.0.0.1:\(port)")
    }

    /// Runs headless Chromium on `url` and returns the DOM after the page's scripts ran.
    static func dom(_ url: String) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try Self.chromium())
        let profile = FileManager.default.temporaryDirectory.appendingPathComponent("chromium-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: profile) }
        process.arguments = [
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
            "--user-data-dir=\(profile.path)", "--virtual-time-budget=8000", "--dump-dom", url,
        ]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = Pipe()
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }

    @Test("Renders the top entities, the alert with its assessment and sparklines, and the status")
    func renders() async throws {
        let live = try sampleLiveView()
        try await Self.serving(live) { base in
            let dom = try Self.dom(base + "/")
            #expect(
                dom.contains(#"<b id="events">123,456</b>"#) || dom.contains(#"<b id="events">123456</b>"#),
                "\(dom.prefix(3000))"
            )
            // Top tables: rows for both brands, with sparklines.
            #expect(dom.contains(#"<tr data-entity="b1">"#) && dom.contains(#"<tr data-entity="b2">"#))
            #expect(dom.contains("<polyline"))
            // The alert card: summary, severity and assessment badges, signals and timeline.
            #expect(dom.contains(#"class="alert critical""#) || dom.contains(#"class="alert warning""#))
            #expect(dom.contains("Negative sentiment spike on brand b1"))
            #expect(dom.contains(#"class="badge organic""#))
            #expect(dom.contains("verified customers"))
            #expect(dom.contains("firing critical @") || dom.contains("firing warning @"))
            #expect(!dom.contains(#"<span id="error">"# + "/v1"), "no fetch errors")
        }
    }

    @Test("With a token in the URL fragment the page authenticates; without, it shows the error")
    func token() async throws {
        let live = try sampleLiveView()
        try await Self.serving(live, token: "s3cret") { base in
            let withToken = try Self.dom(base + "/#token=s3cret")
            #expect(withToken.contains(#"<tr data-entity="b1">"#))
            let without = try Self.dom(base + "/")
            #expect(!without.contains(#"<tr data-entity="b1">"#))
            #expect(without.contains("401"))
        }
    }
}
