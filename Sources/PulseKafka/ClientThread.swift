import Foundation

/// A dedicated OS thread that runs submitted jobs one at a time, in order.
///
/// librdkafka's blocking calls (batch consume, close, flush, transaction commits) run here, never on
/// Swift's cooperative pool, which has only as many threads as cores (two on our machines).
/// `@unchecked Sendable`: `jobs` and `stopping` are only touched under `condition`.
final class ClientThread: @unchecked Sendable {
    private let condition = NSCondition()
    private var jobs: [@Sendable () -> Void] = []
    private var stopping = false
    private var finished = false
    private var thread: Thread?

    init(name: String) {
        let thread = Thread { [self] in self.runLoop() }
        thread.name = name
        thread.stackSize = 1 << 20
        self.thread = thread
        thread.start()
    }

    /// Queues `job`; returns `false` (and drops it) when the thread was stopped.
    @discardableResult
    func submit(_ job: @escaping @Sendable () -> Void) -> Bool {
        self.condition.lock()
        defer { self.condition.unlock() }
        guard !self.stopping else { return false }
        self.jobs.append(job)
        self.condition.signal()
        return true
    }

    /// Runs `body` on the thread and returns its result to the calling task.
    func run<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T? {
        await withCheckedContinuation { (continuation: CheckedContinuation<T?, Never>) in
            let accepted = self.submit { continuation.resume(returning: body()) }
            if !accepted { continuation.resume(returning: nil) }
        }
    }

    /// Lets queued jobs finish, then ends the thread and waits for it.
    ///
    /// Called from the thread itself (the last reference to the owner was dropped by a job), it only asks
    /// the loop to end after the current job.
    func stop() {
        self.condition.lock()
        self.stopping = true
        self.condition.broadcast()
        let onOwnThread = Thread.current === self.thread
        while !self.finished && !onOwnThread {
            self.condition.wait()
        }
        self.condition.unlock()
    }

    private func runLoop() {
        while true {
            self.condition.lock()
            while self.jobs.isEmpty && !self.stopping {
                self.condition.wait()
            }
            if self.jobs.isEmpty {
                self.finished = true
                self.thread = nil
                self.condition.broadcast()
                self.condition.unlock()
                return
            }
            let job = self.jobs.removeFirst()
            self.condition.unlock()
            job()
        }
    }
}
