// swift-tools-version:6.1
// Micro-benchmarks of the core (ordo-one/benchmark): `cd Benchmarks && swift package benchmark`
// (part of `make bench`). The end-to-end scripts next to this file measure the daemon on Kafka.
import PackageDescription

import class Foundation.NSString

/// SwiftPM names a local dependency after its directory (`main`, `crowdpulse`, `x` in a fresh clone …).
let root = ((Context.packageDirectory as NSString).deletingLastPathComponent as NSString).lastPathComponent
    .lowercased()

let package = Package(
    name: "crowdpulse-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(path: "../"),
        .package(url: "https://github.com/ordo-one/benchmark.git", from: "1.38.0", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "PulseCoreBenchmarks",
            dependencies: [
                .product(name: "PulseCore", package: root),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/PulseCoreBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        )
    ]
)
