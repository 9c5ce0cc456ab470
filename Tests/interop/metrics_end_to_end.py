#!/usr/bin/env python3
"""End to end with independent clients (run by `make test`):

Python's confluent-kafka produces a generated stream to `crowdpulse broker`; `crowdpulse run` (a child
process) consumes it; confluent-kafka reads the metrics topic; `crowdpulse replay` runs the same events
from a file. Every metric record must be identical (same keys, same values). Prints 'N passed, M failed'.
"""
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time

from confluent_kafka import Consumer, Producer

BINARY = sys.argv[1] if len(sys.argv) > 1 else ".build/debug/crowdpulse"
results = []


def check(name, condition, detail=""):
    results.append(condition)
    print(("ok   " if condition else "FAIL ") + name + (f": {detail}" if detail and not condition else ""))


def generate(count, start_ms):
    rng = random.Random(2026)
    events, shares = [], []
    for i in range(count):
        subject = f"post-{rng.randrange(30)}"
        event = {"event_id": f"py-{i}", "occurred_at": start_ms + i * 150, "subject_id": subject,
                 "brand": f"brand-{int(subject[5:]) % 4}", "user_id": f"u-{rng.randrange(150)}"}
        roll = rng.random()
        if roll < 0.6:
            event["type"] = "like"
        elif roll < 0.8:
            event["type"] = "comment"
            event["text"] = rng.choice(["love it", "worst ever", "ok", "terrible service", "great"])
            if rng.random() < 0.5:
                event["sentiment"] = round(rng.uniform(-1, 1), 3)
        elif roll < 0.95:
            event["type"] = "share"
            if shares and rng.random() < 0.4:
                event["parent_event_id"] = rng.choice(shares[-20:])
            shares.append(event["event_id"])
            event["user"] = {"followers": rng.randrange(100000)}
        else:
            event["type"] = "purchase"
            event["amount"] = round(rng.uniform(1, 300), 2)
            event["currency"] = rng.choice(["USD", "EUR"])
        events.append(event)
    return events


def main():
    now_ms = int(time.time() * 1000)
    start = (now_ms - 15 * 60_000) // 60_000 * 60_000
    events = generate(2400, start)  # 6 minutes of event time, ending ~9 minutes ago

    with tempfile.NamedTemporaryFile("w", suffix=".ndjson", delete=False) as handle:
        for event in events:
            handle.write(json.dumps(event) + "\n")
        path = handle.name
    replay = subprocess.run([BINARY, "replay", path, "--set", "windows.idle_close=2s"],
                            capture_output=True, text=True, timeout=120)
    os.unlink(path)
    check("replay succeeds", replay.returncode == 0, replay.stderr[-400:])
    expected = {}
    for line in replay.stdout.splitlines():
        record = json.loads(line)
        if record["topic"] == "metrics":
            expected[record["key"]] = record["value"]
    check("replay produced subject and brand records",
          any(k.startswith("brand|") for k in expected) and len(expected) > 50, str(len(expected)))

    broker = subprocess.Popen([BINARY, "broker", "--log-level", "warning", "--partitions", "3"],
                              stdout=subprocess.PIPE, text=True)
    daemon = None
    try:
        bootstrap = broker.stdout.readline().strip().split("=", 1)[1]
        producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 5})
        for event in events:
            producer.produce("crowdpulse.events", key=event["subject_id"], value=json.dumps(event))
            producer.poll(0)
        check("all events delivered", producer.flush(30) == 0)

        daemon = subprocess.Popen(
            [BINARY, "run", "--bootstrap-servers", bootstrap, "--http-listen", "127.0.0.1:0",
             "--set", "windows.idle_close=2s", "--set", "topics.create=false", "--log-level", "warning"])
        reader = Consumer({"bootstrap.servers": bootstrap, "group.id": "py-metrics-reader",
                           "auto.offset.reset": "earliest", "session.timeout.ms": 6000})
        reader.subscribe(["crowdpulse.metrics"])
        actual = {}
        deadline = time.time() + 90
        while len(actual) < len(expected) and time.time() < deadline:
            message = reader.poll(0.5)
            if message is None or message.error():
                continue
            actual[message.key().decode()] = json.loads(message.value())
        reader.close()
        check("the daemon produced every record replay did", set(actual) == set(expected),
              f"missing {sorted(set(expected) - set(actual))[:3]}, extra {sorted(set(actual) - set(expected))[:3]}")
        differing = [key for key in expected if key in actual and actual[key] != expected[key]]
        check("every record equals replay's", not differing,
              f"{len(differing)} differ, e.g. {differing[:1]}: {expected[differing[0]] if differing else ''} vs "
              f"{actual[differing[0]] if differing else ''}")
    finally:
        if daemon is not None:
            daemon.send_signal(signal.SIGTERM)
            check("crowdpulse run exits cleanly on SIGTERM", daemon.wait(timeout=30) == 0)
        broker.terminate()
        broker.wait(timeout=20)

    passed = sum(results)
    failed = len(results) - passed
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
