#!/usr/bin/env python3
"""`crowdpulse run` over the same pre-filled topic, full pipeline (decode, validate, dedup, all metrics,
sentiment, brand stage, producing records), measured from the first consumed record (read from its
/metrics) to all input offsets committed (read from the group's committed offsets).

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
start = end = None
deadline = time.time() + 600
try:
    while time.time() < deadline:
        if start is None:
            try:
                text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1).read().decode()
                match = re.search(r"^crowdpulse_records_consumed_total (\d+)", text, re.M)
                if match and int(match.group(1)) > 0:
                    start = time.monotonic()
            except OSError:
                pass
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
seconds = (end or time.monotonic()) - (start or time.monotonic())
print(f"crowdpulse messages={expected if end else 0} seconds={seconds:.3f} rate={int(expected / seconds) if end and seconds else 0}")
