#!/usr/bin/env python3
"""Interop with Python's confluent-kafka through `crowdpulse broker` (run by `make test`).

Checks, over TCP, with an independent client:
  1. confluent-kafka produces (keys + headers); two confluent-kafka consumers in one group split the
     partitions and together read every message once.
  2. `crowdpulse generate` (our Producer) writes events that confluent-kafka reads as valid JSON.
  3. confluent-kafka writes messages that `crowdpulse bench-consume` (our Consumer) reads, all of them.
Prints 'N passed, M failed' and exits non-zero on any failure.
"""
import json
import subprocess
import sys
import time

from confluent_kafka import Consumer, Producer

BINARY = sys.argv[1] if len(sys.argv) > 1 else ".build/debug/crowdpulse"
results = []


def check(name, condition, detail=""):
    results.append(condition)
    print(("ok   " if condition else "FAIL ") + name + (f": {detail}" if detail and not condition else ""))


def group_consumer(bootstrap, group, topic):
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": 6000,
        "partition.assignment.strategy": "cooperative-sticky",
    })
    consumer.subscribe([topic])
    return consumer


def main():
    broker = subprocess.Popen(
        [BINARY, "broker", "--log-level", "warning", "--topic", "py.in:4", "--topic", "py.gen:3", "--topic", "py.out:2"],
        stdout=subprocess.PIPE, text=True)
    try:
        first = broker.stdout.readline().strip()
        check("broker prints bootstrap.servers first", first.startswith("bootstrap.servers="), first)
        bootstrap = first.split("=", 1)[1]

        # 1. produce with headers, consume with a two-member group
        producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
        failures = []
        for i in range(2000):
            producer.produce("py.in", key=f"k{i % 50}", value=f"v{i}", headers=[("seq", str(i).encode())],
                             on_delivery=lambda err, msg: failures.append(err) if err else None)
            producer.poll(0)
        producer.flush(30)
        check("confluent-kafka deliveries succeed", not failures, str(failures[:3]))

        a = group_consumer(bootstrap, "py-group", "py.in")
        b = group_consumer(bootstrap, "py-group", "py.in")
        seen = {}
        owners = {"a": set(), "b": set()}
        deadline = time.time() + 40
        while len(seen) < 2000 and time.time() < deadline:
            for name, consumer in (("a", a), ("b", b)):
                msg = consumer.poll(0.1)
                if msg is None or msg.error():
                    continue
                owners[name].add(msg.partition())
                seen[msg.value().decode()] = dict(msg.headers() or [])
        check("group consumers read all 2000 messages", len(seen) == 2000, f"{len(seen)}")
        check("headers survive", all(h.get("seq") == v[1:].encode() for v, h in seen.items()))
        check("both members got partitions", bool(owners["a"]) and bool(owners["b"]), str(owners))
        a.close()
        b.close()

        # 2. our producer -> confluent-kafka consumer
        generated = subprocess.run([BINARY, "generate", "--bootstrap-servers", bootstrap, "--topic", "py.gen",
                                    "--count", "3000", "--log-level", "warning"], capture_output=True, text=True)
        check("crowdpulse generate succeeds", generated.returncode == 0, generated.stderr[-500:])
        reader = group_consumer(bootstrap, "py-reader", "py.gen")
        events = []
        deadline = time.time() + 30
        while len(events) < 3000 and time.time() < deadline:
            msg = reader.poll(0.2)
            if msg is None or msg.error():
                continue
            events.append((msg.key().decode(), json.loads(msg.value())))
        reader.close()
        check("confluent-kafka reads all generated events", len(events) == 3000, f"{len(events)}")
        check("generated events are keyed by subject",
              all(key == event["subject_id"] for key, event in events))

        # 3. confluent-kafka producer -> our consumer
        producer = Producer({"bootstrap.servers": bootstrap, "compression.codec": "zstd"})
        for i in range(5000):
            producer.produce("py.out", value=json.dumps({"i": i}).encode())
            producer.poll(0)
        producer.flush(30)
        ours = subprocess.run([BINARY, "bench-consume", "--bootstrap-servers", bootstrap, "--topic", "py.out",
                               "--messages", "5000"], capture_output=True, text=True, timeout=60)
        check("our consumer reads confluent-kafka's 5000 messages",
              ours.returncode == 0 and "messages=5000 " in ours.stdout, ours.stdout + ours.stderr[-300:])
    finally:
        broker.terminate()
        check("broker exits cleanly on SIGTERM", broker.wait(timeout=20) == 0)

    passed = sum(results)
    failed = len(results) - passed
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
