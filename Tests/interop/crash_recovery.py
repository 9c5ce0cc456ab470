#!/usr/bin/env python3
"""State that survives: crash and scale-out tests with independent clients and real processes.

    crash_recovery.py BINARY [--cycles N] [--scenario crash|scale] [--seed S]

A Python producer (confluent-kafka) writes a generated stream to `crowdpulse broker` at a steady pace.

- `crash`: `crowdpulse run` (a child process) is killed with SIGKILL at random points, N times, and
  restarted each time; the last instance runs until every window has closed.
- `scale`: two instances start, a third joins, then the first is stopped with SIGTERM.

Then the metrics topic is read with confluent-kafka and compared with `crowdpulse replay` of the same
events: every key replay produced is there (nothing lost), and every record of a key equals replay's
(nothing different; a duplicate from re-processing is an identical upsert).

Alerts are compared with a *control* instance that reads the same input, uninterrupted, in its own
consumer group and with its own topics (`control.*`): a crisis detector's baselines are per partition
(the brands and subjects it shares a partition with shape its priors), so the reference for alerts is
the same partitioning processed without interruption, not replay's single partition.

Prints 'N passed, M failed' and exits non-zero on failure.
"""
import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time

from confluent_kafka import Consumer, Producer

results = []


def check(name, condition, detail=""):
    results.append(condition)
    print(("ok   " if condition else "FAIL ") + name + (f": {detail}" if detail and not condition else ""), flush=True)


def generate(count, start_ms, seed):
    """Events 100 ms of event time apart, in order but for a little disorder (well within the grace),
    with duplicates re-sent a few events later, cascades of shares, and bursts of angry comments."""
    rng = random.Random(seed)
    events, shares = [], []
    angry = ["worst ever", "terrible service", "never again", "awful, refund me", "scam, broken on arrival"]
    calm = ["love it", "ok", "great", "nice colour", "fine I guess"]
    for i in range(count):
        subject = f"post-{rng.randrange(40)}"
        at = start_ms + i * 100 - rng.randrange(0, 2000)
        event = {"event_id": f"crash-{seed}-{i}", "occurred_at": at, "subject_id": subject,
                 "brand": f"brand-{int(subject[5:]) % 5}", "user_id": f"u-{rng.randrange(400)}"}
        # A crisis on brand-1 in the middle of the stream: its subjects get angry comments.
        crisis = count // 2 < i < count * 3 // 4 and int(subject[5:]) % 5 == 1
        roll = rng.random()
        if roll < (0.3 if crisis else 0.6):
            event["type"] = "like"
        elif roll < 0.8:
            event["type"] = "comment"
            event["text"] = rng.choice(angry if crisis or rng.random() < 0.1 else calm) + f" #{rng.randrange(1000)}"
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
        if rng.random() < 0.02:
            events.append(dict(event))  # a duplicate, re-sent by an at-least-once producer
    return events


# Alert fields that depend on the wall clock or on the process, not on the events.
WALL_CLOCK_FIELDS = {"emitted_at", "consumer_lag", "generatorURL", "generator_url"}


def comparable(topic, value):
    if topic != "alerts":
        return value
    return strip(value)


def strip(value):
    if isinstance(value, dict):
        return {k: strip(v) for k, v in value.items() if k not in WALL_CLOCK_FIELDS}
    if isinstance(value, list):
        return [strip(v) for v in value]
    return value


def diff(a, b, path=""):
    """The paths where two JSON values differ, for failure messages."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [p for k in sorted(set(a) | set(b)) for p in diff(a.get(k), b.get(k), f"{path}.{k}")]
    return [] if a == b else [f"{path}: {a!r} vs {b!r}"]


def replay(binary, events, settings):
    with tempfile.NamedTemporaryFile("w", suffix=".ndjson", delete=False) as handle:
        for event in events:
            handle.write(json.dumps(event) + "\n")
        path = handle.name
    arguments = [binary, "replay", path]
    for setting in settings:
        arguments += ["--set", setting]
    done = subprocess.run(arguments, capture_output=True, text=True, timeout=300)
    os.unlink(path)
    check("replay succeeds", done.returncode == 0, done.stderr[-400:])
    expected = {"metrics": {}, "alerts": {}}
    for line in done.stdout.splitlines():
        record = json.loads(line)
        if record["topic"] in expected:
            expected[record["topic"]].setdefault(record["key"], []).append(comparable(record["topic"], record["value"]))
    return expected


def start_daemon(binary, bootstrap, settings, name, logs):
    arguments = [binary, "run", "--bootstrap-servers", bootstrap, "--http-listen", "127.0.0.1:0",
                 "--log-level", os.environ.get("CROWDPULSE_LOG_LEVEL", "info"), "--log-format", "json"]
    for setting in settings:
        arguments += ["--set", setting]
    log = open(os.path.join(logs, f"{name}.log"), "w")
    return subprocess.Popen(arguments, stdout=log, stderr=subprocess.STDOUT)


def read_all(bootstrap, topic, until_keys, quiet_seconds, limit_seconds):
    """Every record of `topic`, read from the start, until `until_keys` keys are seen and nothing new came
    for `quiet_seconds` (or `limit_seconds` pass)."""
    reader = Consumer({"bootstrap.servers": bootstrap, "group.id": f"py-reader-{topic}-{time.time()}",
                       "auto.offset.reset": "earliest", "session.timeout.ms": 6000})
    reader.subscribe([topic])
    records = {}
    last_new = time.time()
    deadline = time.time() + limit_seconds
    while time.time() < deadline:
        message = reader.poll(0.5)
        if message is None or message.error():
            if len(records) >= until_keys and time.time() - last_new > quiet_seconds:
                break
            continue
        last_new = time.time()
        records.setdefault(message.key().decode(), []).append(json.loads(message.value()))
    reader.close()
    return records


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("binary")
    parser.add_argument("--cycles", type=int, default=3)
    parser.add_argument("--scenario", choices=["crash", "scale"], default="crash")
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--rate", type=int, default=400, help="events per second produced")
    parser.add_argument("--guarantee", choices=["at_least_once", "exactly_once"], default="at_least_once")
    parser.add_argument("--bootstrap-servers",
                        help="a real cluster instead of the embedded broker (topics are created, named by --prefix)")
    parser.add_argument("--prefix", default=None, help="topic name prefix (default crowdpulse, or crash-SEED)")
    parser.add_argument("--expect-no-duplicates", action="store_true",
                        help="exactly_once on real Kafka: no record may be read twice (read_committed)")
    arguments = parser.parse_args()
    rng = random.Random(arguments.seed)
    print(f"scenario {arguments.scenario}, {arguments.guarantee}, seed {arguments.seed}, cycles {arguments.cycles}",
          flush=True)

    # Long enough for every kill and the group's rejoin (about the session timeout on the embedded broker).
    seconds = 25 + (arguments.cycles * 11 if arguments.scenario == "crash" else 40)
    count = seconds * arguments.rate
    start = (int(time.time() * 1000) - 24 * 3_600_000) // 60_000 * 60_000
    events = generate(count, start, arguments.seed)
    # Idle close must outlast a rebalance (about the session timeout here): a partition that moves is
    # silent for that long, and closing windows over it would turn its events late.
    settings = ["windows.idle_close=8s", "windows.grace=5s", "detection.min_negative=5"]
    expected = replay(arguments.binary, events, settings)
    check("replay produced metrics and alerts", len(expected["metrics"]) > 100 and len(expected["alerts"]) > 0,
          f"{len(expected['metrics'])} metric keys, {len(expected['alerts'])} alert keys")

    logs = tempfile.mkdtemp(prefix="crowdpulse-crash-")
    control_topics = ["metrics", "alerts", "late", "deadletter", "changelog", "repartition"]
    external = arguments.bootstrap_servers is not None
    prefix = arguments.prefix or (f"crash-{arguments.seed}" if external else "crowdpulse")
    control_prefix = f"{prefix}-control" if external else "control"
    broker = None
    if not external:
        broker_arguments = [arguments.binary, "broker", "--log-level", "warning", "--partitions", "4"]
        for topic in control_topics:
            broker_arguments += ["--topic", f"control.{topic}:4"]
        broker = subprocess.Popen(broker_arguments, stdout=subprocess.PIPE, text=True)
    daemons = []
    try:
        bootstrap = arguments.bootstrap_servers or broker.stdout.readline().strip().split("=", 1)[1]
        run_settings = settings + [
            "topics.create=false",
            f"topics.input={prefix}.events", "kafka.librdkafka.session.timeout.ms=6000",
                                   "kafka.librdkafka.heartbeat.interval.ms=500",
                                   f"processing.guarantee={arguments.guarantee}",
                                   # Kills come 1.5-6 s after an assignment, to land while checkpoints are
                                   # written: commit every second (the default is 5 s under at_least_once).
                                   "processing.commit_interval=1s"]
        run_settings += [f"topics.{topic}={prefix}.{topic}" for topic in control_topics]
        if external:
            # The embedded broker makes its topics at start; on a real cluster create them first.
            from confluent_kafka.admin import AdminClient, NewTopic
            admin = AdminClient({"bootstrap.servers": bootstrap})
            wanted = [NewTopic(f"{prefix}.events", 4, 1)]
            for base in (prefix, control_prefix):
                for topic in control_topics:
                    config = {"cleanup.policy": "compact"} if topic == "changelog" else {}
                    wanted.append(NewTopic(f"{base}.{topic}", 4, 1, config=config))
            for future in admin.create_topics(wanted).values():
                future.result(30)

        produced = threading.Event()

        def produce():
            producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 5})
            began = time.time()
            for index, event in enumerate(events):
                producer.produce(f"{prefix}.events", key=event["subject_id"], value=json.dumps(event))
                producer.poll(0)
                ahead = index / arguments.rate - (time.time() - began)
                if ahead > 0:
                    time.sleep(ahead)
            producer.flush(30)
            produced.set()

        feeder = threading.Thread(target=produce, daemon=True)
        feeder.start()
        generation = 0

        def launch():
            nonlocal generation
            generation += 1
            daemon = start_daemon(arguments.binary, bootstrap, run_settings, f"run-{generation}", logs)
            daemons.append(daemon)
            return daemon

        control = start_daemon(
            arguments.binary, bootstrap,
            run_settings + [f"kafka.group_id={control_prefix}"]
            + [f"topics.{topic}={control_prefix}.{topic}" for topic in control_topics],
            "control", logs)
        daemons.append(control)

        def wait_assigned(name, limit=60):
            deadline = time.time() + limit
            while time.time() < deadline:
                with open(os.path.join(logs, f"{name}.log")) as handle:
                    if "Partitions assigned" in handle.read():
                        return True
                time.sleep(0.2)
            return False

        if arguments.scenario == "crash":
            current = launch()
            for cycle in range(arguments.cycles):
                # Killed at a random point once it is working: after its assignment, while checkpointing.
                wait_assigned(f"run-{generation}")
                time.sleep(rng.uniform(1.5, 6))
                current.send_signal(signal.SIGKILL)
                current.wait()
                print(f"killed instance {generation} (cycle {cycle + 1})", flush=True)
                current = launch()
        else:
            first, _ = launch(), launch()
            time.sleep(12)
            launch()
            time.sleep(12)
            first.send_signal(signal.SIGTERM)
            check("the stopped instance exits cleanly", first.wait(timeout=60) == 0)
        produced.wait(timeout=seconds * 3)
        check("every event produced", produced.is_set())

        control_alerts = {}
        for topic in ("metrics", "alerts"):
            actual = read_all(bootstrap, f"{prefix}.{topic}", len(expected[topic]), quiet_seconds=25,
                              limit_seconds=180)
            if topic == "alerts":
                control_alerts = read_all(bootstrap, f"{control_prefix}.alerts", len(actual), quiet_seconds=5,
                                          limit_seconds=60)
                expected[topic] = {key: [strip(value) for value in values] for key, values in control_alerts.items()}
            missing = sorted(set(expected[topic]) - set(actual))
            extra = sorted(set(actual) - set(expected[topic]))
            check(f"{topic}: every key the reference produced is there, and no other", not missing and not extra,
                  f"{len(missing)} missing, e.g. {missing[:3]}; {len(extra)} extra, e.g. {extra[:3]}")
            if topic == "metrics":
                # A final metric record per key: every copy must equal replay's.
                differing = [key for key in expected[topic] if key in actual
                             and any(value != expected[topic][key][-1] for value in actual[key])]
                duplicates = sum(len(values) - 1 for values in actual.values())
                if arguments.expect_no_duplicates:
                    check("metrics: no record was read twice (exactly_once, read_committed)", duplicates == 0,
                          f"{duplicates} copies")
                check(f"metrics: every record (and each of {duplicates} re-sent copies) equals replay's",
                      not differing,
                      f"{len(differing)} keys differ, e.g. {differing[:1]}: " + " | ".join(
                          "; ".join(diff(expected[topic][differing[0]][-1], value)) for value in
                          (actual[differing[0]] if differing else [])))
            else:
                # Alert state changes per fingerprint: the latest equals replay's, and every change the
                # daemon sent is one replay sent too (re-sent changes are copies).
                latest_differs = [key for key in expected[topic] if key in actual
                                  and strip(actual[key][-1]) != expected[topic][key][-1]]
                foreign = [key for key in actual if key in expected[topic]
                           and any(strip(value) not in expected[topic][key] for value in actual[key])]
                check(f"alerts: the latest change of each of {len(actual)} alerts equals the control's",
                      not latest_differs,
                      f"{latest_differs[:1]}: "
                      + "; ".join(diff(expected[topic][latest_differs[0]][-1], strip(actual[latest_differs[0]][-1]))
                                  if latest_differs else []))
                check("alerts: every change sent is one the control sent", not foreign,
                      f"{foreign[:2]}: " + " | ".join(
                          f"{[v.get('status') for v in expected[topic][key]]} vs {[v.get('status') for v in actual[key]]}"
                          for key in foreign[:2]))

        late = read_all(bootstrap, f"{prefix}.late", 0, quiet_seconds=3, limit_seconds=20)
        check("no event was late (replay has none: the disorder is within the grace)", not late,
              f"{sum(len(v) for v in late.values())} late records, e.g. keys {list(late)[:3]}")

        restored = 0
        committed_on_revoke = 0
        for name in sorted(os.listdir(logs)):
            with open(os.path.join(logs, name)) as handle:
                text = handle.read()
            restored += text.count("Restored from the changelog")
            committed_on_revoke += text.count("Revoked partitions checkpointed")
        check("restarted instances restored state from the changelog", restored > 0, f"logs in {logs}")
        if arguments.scenario == "scale":
            check("the revoke path checkpointed and committed", committed_on_revoke > 0, f"logs in {logs}")
    finally:
        for daemon in daemons:
            if daemon.poll() is None:
                daemon.send_signal(signal.SIGTERM)
                try:
                    daemon.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    daemon.kill()
        if broker is None:
            pass
        elif os.environ.get("CRASH_KEEP_BROKER"):
            print(f"broker left running at {bootstrap} (pid {broker.pid})")
        else:
            broker.terminate()
            broker.wait(timeout=20)

    passed = sum(results)
    failed = len(results) - passed
    print(f"{passed} passed, {failed} failed (seed {arguments.seed}, logs in {logs})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
