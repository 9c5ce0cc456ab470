import PulseCore
import Testing

@Suite("Alert lifecycle")
struct AlertLifecycleTests {
    let minute: Int64 = 60_000

    /// Evaluates once per minute of event time from `startMinute`, with the given conditions.
    func run(
        _ conditions: [AlertSeverity?],
        from startMinute: Int64 = 0,
        configuration: AlertLifecycle.Configuration = .init(),
        lifecycle: inout AlertLifecycle
    ) -> [(Int64, AlertLifecycle.Action)] {
        var actions: [(Int64, AlertLifecycle.Action)] = []
        for (index, condition) in conditions.enumerated() {
            let time = (startMinute + Int64(index)) * self.minute
            actions += lifecycle.evaluate(at: time, breaching: condition).map { (time, $0) }
        }
        return actions
    }

    @Test("pending → firing after `for`, resolved after `keep_firing_for` of clear evaluations, exact timings")
    func exactTimings() {
        var lifecycle = AlertLifecycle()  // for 1 m, keep firing 10 m, cooldown 15 m
        // Minutes 0–4 breaching, then clear for 12 minutes.
        let conditions: [AlertSeverity?] =
            Array(repeating: .warning, count: 5) + Array(repeating: nil, count: 12)
        let actions = self.run(conditions, lifecycle: &lifecycle)
        #expect(
            actions.map(\.1) == [
                .fire(severity: .warning, startsAt: 0, detectedAt: self.minute),
                .resolve(severity: .warning, startsAt: 0, endsAt: 15 * self.minute),
            ]
        )
        // Fired at minute 1 (held for exactly `for`); clear since minute 5, resolved 10 minutes later.
        #expect(actions.map(\.0) == [self.minute, 15 * self.minute])
        #expect(lifecycle.state == .cooldown(until: 30 * self.minute))
    }

    @Test("Alternating every evaluation never holds for `for`: no alert at all (pending resets, as in Prometheus)")
    func alternatingNeverFires() {
        var lifecycle = AlertLifecycle()
        let actions = self.run((0..<30).map { $0 % 2 == 0 ? .critical : nil }, lifecycle: &lifecycle)
        #expect(actions.isEmpty)
    }

    @Test("A condition shorter than `for` never fires")
    func shortBlipDoesNotFire() {
        var lifecycle = AlertLifecycle(configuration: .init(forMillis: 2 * self.minute))
        let actions = self.run([.critical, .critical, nil, .critical, nil], lifecycle: &lifecycle)
        #expect(actions.isEmpty)
        #expect(lifecycle.state == .inactive)
    }

    @Test("Flapping input gives one firing and one resolution, not a storm")
    func flapping() {
        var lifecycle = AlertLifecycle()
        // 40 minutes of two minutes breaching, one clear: the clear gaps never reach keep_firing_for.
        let conditions: [AlertSeverity?] =
            (0..<40).map { $0 % 3 != 2 ? .warning : nil } + Array(repeating: nil, count: 11)
        let actions = self.run(conditions, lifecycle: &lifecycle).map(\.1)
        #expect(actions.count == 2)
        guard case .fire = actions.first, case .resolve = actions.last else {
            Issue.record("unexpected \(actions)")
            return
        }
    }

    @Test("Severity escalates in place and never drops within an excursion")
    func escalation() {
        var lifecycle = AlertLifecycle()
        let conditions: [AlertSeverity?] =
            [.warning, .warning, .critical, .warning, .warning] + Array(repeating: nil, count: 11)
        let actions = self.run(conditions, lifecycle: &lifecycle).map(\.1)
        #expect(
            actions == [
                .fire(severity: .warning, startsAt: 0, detectedAt: self.minute),
                .escalate(from: .warning, to: .critical, at: 2 * self.minute),
                .resolve(severity: .critical, startsAt: 0, endsAt: 15 * self.minute),
            ]
        )
    }

    @Test("Pending takes the highest severity reached before firing")
    func pendingKeepsHighestSeverity() {
        var lifecycle = AlertLifecycle(configuration: .init(forMillis: 2 * self.minute))
        let actions = self.run([.warning, .critical, .warning], lifecycle: &lifecycle).map(\.1)
        #expect(actions == [.fire(severity: .critical, startsAt: 0, detectedAt: 2 * self.minute)])
    }

    @Test("Cooldown: no new firing until it has passed, then a new excursion can fire")
    func cooldown() {
        var lifecycle = AlertLifecycle(
            configuration: .init(
                forMillis: self.minute,
                keepFiringForMillis: 2 * self.minute,
                cooldownMillis: 5 * self.minute
            )
        )
        // Fire (0–1), clear 2 m → resolve at 4; breach again at 5–8 (inside cooldown until 9), then 9–10.
        let conditions: [AlertSeverity?] = [
            .warning, .warning, nil, nil, nil, .warning, .warning, .warning, .warning, .warning, .warning,
        ]
        let actions = self.run(conditions, lifecycle: &lifecycle)
        #expect(
            actions.map(\.1) == [
                .fire(severity: .warning, startsAt: 0, detectedAt: self.minute),
                .resolve(severity: .warning, startsAt: 0, endsAt: 4 * self.minute),
                .fire(severity: .warning, startsAt: 9 * self.minute, detectedAt: 10 * self.minute),
            ]
        )
    }
}
