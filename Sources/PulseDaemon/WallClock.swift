#if canImport(Glibc)
import Glibc
#endif

/// The wall clock, read only in the daemon (the core gets time from events or an injected clock).
public enum WallClock {
    /// Epoch milliseconds now.
    public static func nowMillis() -> Int64 {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Int64(spec.tv_sec) * 1000 + Int64(spec.tv_nsec) / 1_000_000
    }
}
