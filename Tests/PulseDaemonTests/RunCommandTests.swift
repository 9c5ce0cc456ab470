import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `crowdpulse run` as its own process, against `crowdpulse broker`.
@Suite("crowdpulse run")
struct RunCommandTests {
    @Test(
        "Serves /metrics with latency buckets around the 2 s objective, and exits 0 on SIGTERM",
        .timeLimit(.minutes(1))
    )
    func metricsBucketsAndShutdown() async throws {
        let broker = try BrokerProcess.start([])
        defer { broker.terminate() }
        let port = Int.random(in: 20_000..<40_000)
        let daemon = Process()
        daemon.executableURL = URL(fileURLWithPath: try crowdpulseBinary())
        daemon.arguments = [
            "run", "--bootstrap-servers", broker.bootstrapServers, "--http-listen", "127.0.0.1:\(port)",
            "--log-level", "warning",
        ]
        daemon.standardOutput = FileHandle.nullDevice
        try daemon.run()
        defer { if daemon.isRunning { daemon.terminate() } }

        var text = ""
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            text = httpGet(port: UInt16(port), path: "/metrics") ?? ""
            if text.contains("crowdpulse_alert_latency_seconds_bucket") { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        for name in ["crowdpulse_alert_latency_seconds", "crowdpulse_event_processing_latency_seconds"] {
            let bounds = text.split(separator: "\n").filter { $0.hasPrefix("\(name)_bucket{") }.compactMap {
                line -> Double? in
                guard let start = line.range(of: "le=\"")?.upperBound else { return nil }
                return Double(line[start...].prefix { $0 != "\"" })
            }
            #expect(bounds.contains(1.5) && bounds.contains(2.0) && bounds.contains(3.0), "\(name): \(bounds)")
        }
        daemon.terminate()
        daemon.waitUntilExit()
        #expect(daemon.terminationStatus == 0)
    }
}

/// A plain HTTP/1.0 GET on 127.0.0.1, returning the body (nil when the server is not there yet).
private func httpGet(port: UInt16, path: String) -> String? {
    let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard socket >= 0 else { return nil }
    defer { close(socket) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = port.bigEndian
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
    }
    guard connected == 0 else { return nil }
    // Never block for good on a server that keeps the connection open.
    var timeout = timeval(tv_sec: 2, tv_usec: 0)
    setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    let request = Array("GET \(path) HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".utf8)
    guard send(socket, request, request.count, 0) == request.count else { return nil }
    var response: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65_536)
    while true {
        let count = recv(socket, &buffer, buffer.count, 0)
        if count <= 0 { break }
        response.append(contentsOf: buffer[0..<count])
        // Done when the body has its Content-Length (the server may keep the connection open).
        let text = String(decoding: response, as: UTF8.self)
        if let end = text.range(of: "\r\n\r\n"),
            let line = text[..<end.lowerBound].split(separator: "\r\n").first(where: {
                $0.lowercased().hasPrefix("content-length:")
            }),
            let length = Int(line.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)),
            text[end.upperBound...].utf8.count >= length
        {
            break
        }
    }
    let text = String(decoding: response, as: UTF8.self)
    guard let body = text.range(of: "\r\n\r\n") else { return nil }
    return String(text[body.upperBound...])
}
