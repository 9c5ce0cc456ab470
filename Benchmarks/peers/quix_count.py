#!/usr/bin/env python3
"""Quix Streams doing a tumbling 60 s count per key over a pre-filled topic (the peer in `make bench-peers`).

usage: quix_count.py BOOTSTRAP TOPIC MESSAGES
Prints `quix messages=N seconds=S rate=R` measured from the first processed message to the last.
"""
import sys
import time
import uuid

from quixstreams import Application
from quixstreams.models.topics.admin import TopicAdmin
from quixstreams.models.topics.topic import TopicConfig


def inspect_from_metadata(self, topic_names, timeout=None):
    # librdkafka's mock cluster cannot answer DescribeConfigs (no controller in its metadata); Quix only
    # needs the partition counts here, which metadata has. Processing is untouched.
    cluster = self.admin_client.list_topics(timeout=timeout or 10).topics
    return {name: TopicConfig(num_partitions=len(cluster[name].partitions), replication_factor=1,
                                extra_config={"retention.ms": "604800000", "retention.bytes": "-1", "cleanup.policy": "delete"})
            if name in cluster else None for name in topic_names}


TopicAdmin.inspect_topics = inspect_from_metadata

bootstrap, topic_name, expected = sys.argv[1], sys.argv[2], int(sys.argv[3])
app = Application(
    broker_address=bootstrap,
    consumer_group=f"quix-bench-{uuid.uuid4().hex[:8]}",
    auto_offset_reset="earliest",
    # The embedded broker cannot create topics for clients; window state stays local (no changelog).
    auto_create_topics=False,
    use_changelog_topics=False,
    loglevel="WARNING",
    consumer_extra_config={"queued.min.messages": 1000000, "queued.max.messages.kbytes": 262144},
    state_dir=f"/tmp/quix-state-{uuid.uuid4().hex[:8]}",
)
topic = app.topic(topic_name, value_deserializer="json", timestamp_extractor=lambda value, headers, ts, kind: value["occurred_at"])
state = {"count": 0, "start": None, "end": None}


def processed(row):
    if state["start"] is None:
        state["start"] = time.monotonic()
    state["count"] += 1
    if state["count"] >= expected:
        state["end"] = time.monotonic()
        app.stop()
    return row


sdf = app.dataframe(topic)
sdf = sdf.update(processed)
sdf = sdf.tumbling_window(duration_ms=60_000).count().final()
app.run()
seconds = (state["end"] or time.monotonic()) - (state["start"] or time.monotonic())
print(f"quix messages={state['count']} seconds={seconds:.3f} rate={int(state['count'] / seconds) if seconds else 0}")
