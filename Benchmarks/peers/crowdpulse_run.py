#!/usr/bin/env python3
"""`crowdpulse run` over the same pre-filled topic, full pipeline (decode, validate, dedup, all metrics,
sentiment, brand stage, producing records).

Measured the way `quix_count.py` measures Quix Streams, from the first record processed to the last (read from
the daemon's `crowdpulse_records_consumed_total`, which counts a batch once it has been through the pipeline;
the records the first scrape already finds counted are left out of the rate, `timed=`),
and also to all input offsets committed (read from the group's committed offsets), which adds the commit: up to
the pause that triggers it (about a second without input) and the checkpoint, flush and offset commit.

usage: crowdpulse_run.py CROWDPULSE BOOTSTRAP TOPIC MESSAGES PORT
"""
import re
import subprocess
import sys
import time
import urllib.request

from confluent_kafka import Consumer, TopicPartition

binary, bootstrap, topic, expected, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
group = f"crowdpulse-bench-{int(time.time())}"
daemon = subprocess.Popen([binary, "run", "--bootstrap-servers", bootstrap, "--group-id", group, "--topic", topic,
                           "--http-listen", f"127.0.0.1:{port}", "--set", "topics.create=false",
                           "--set", "ingest.max_future_skew=3650d", "--log-level", "error"])
probe = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
partitions = [TopicPartition(topic, p) for p in probe.list_topics(topic).topics[topic].partitions]


def processed():
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1).read().decode()
    except OSError:
        return 0
    match = re.search(r"^crowdpulse_records_consumed_total (\d+)", text, re.M)
    return int(match.group(1)) if match else 0


start = done = end = None
# Records already counted at the first scrape that sees any: the rate is taken over the rest, so that the first
# batch (tens of thousands of records, processed before any scrape can see them) is not counted as free.
initial = 0
deadline = time.time() + 600
try:
    while time.time() < deadline:
        if start is None or done is None:
            # Polled every 20 ms (a scrape costs the daemon well under a millisecond): a run takes seconds.
            count = processed()
            now = time.monotonic()
            if start is None and count > 0:
                start, initial = now, count
            if start is not None and count >= expected:
                done = now
            time.sleep(0.02)
            continue
        committed = sum(max(tp.offset, 0) for tp in probe.committed(partitions, timeout=10))
        if committed >= expected:
            end = time.monotonic()
            break
        time.sleep(0.05)
finally:
    daemon.terminate()
    daemon.wait(timeout=60)
    probe.close()


def rate(finish):
    if start is None or finish is None or finish <= start:
        return 0
    return int((expected - initial) / (finish - start))


processing = (done or time.monotonic()) - (start or time.monotonic())
committing = (end or time.monotonic()) - (start or time.monotonic())
# `rate=` (first to last record processed, as for Quix Streams) is the one the ratio uses.
print(f"crowdpulse messages={expected if done else 0} timed={expected - initial} seconds={processing:.3f} rate={rate(done)} "
      f"committed_seconds={committing:.3f} committed_rate={rate(end)}")
