import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Facts about the machine the daemon runs on.
public enum Machine {
    /// Cores this process may use, at least 1.
    public static var cores: Int { max(1, ProcessInfo.processInfo.activeProcessorCount) }

    /// How often ``startReleasingFreeMemory(every:)`` gives free heap memory back by default.
    public static let releaseInterval: Duration = .seconds(10)

    /// Gives the free memory of glibc's heap arenas back to the system (`malloc_trim(0)`: free pages inside
    /// the heaps too, not only at their tops).
    ///
    /// - Returns: whether the allocator is glibc's (and so whether anything was done).
    @discardableResult
    public static func releaseFreeMemory() -> Bool {
        #if canImport(Glibc)
        // Declared in <malloc.h>, which the Glibc module does not export: looked up by name.
        typealias MallocTrim = @convention(c) (Int) -> Int32
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "malloc_trim") else { return false }
        _ = unsafeBitCast(symbol, to: MallocTrim.self)(0)
        return true
        #else
        return false
        #endif
    }

    /// Starts a thread that calls ``releaseFreeMemory()`` every `interval` for the rest of the process.
    /// Called once by the commands that host the daemon.
    ///
    /// Each checkpoint allocates and frees megabytes (encoded state, its chunks, librdkafka's copies until
    /// delivered; the collections copied after a capture), on whichever threads run the pipeline, the
    /// encoding and librdkafka. glibc serves them from per-thread heap arenas, which keep what is freed
    /// in the middle of a heap: in a 10-minute live run at 50 000 events/s the resident memory kept growing
    /// while the counted state was flat (docs/performance.md). Fixing glibc's mmap threshold instead (so
    /// that large buffers are unmapped when freed) kept memory flatter but cost 10–25 % of the benchmark's
    /// throughput, because every large copy then starts on fresh, zeroed pages.
    ///
    /// - Returns: `false` (and starts nothing) when the allocator is not glibc's.
    @discardableResult
    public static func startReleasingFreeMemory(every interval: Duration = Self.releaseInterval) -> Bool {
        #if canImport(Glibc)
        guard dlsym(UnsafeMutableRawPointer(bitPattern: 0), "malloc_trim") != nil else { return false }
        let seconds = Double(interval.components.seconds) + Double(interval.components.attoseconds) / 1e18
        let thread = Thread {
            while true {
                Thread.sleep(forTimeInterval: seconds)
                Self.releaseFreeMemory()
            }
        }
        thread.name = "crowdpulse-trim"
        thread.start()
        return true
        #else
        return false
        #endif
    }
}
