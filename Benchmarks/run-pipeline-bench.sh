#!/usr/bin/env bash
# End-to-end benchmark on one pre-filled topic of the embedded broker (2 000 000 standard events, lz4,
# 64 partitions by default):
#   the limit     — a plain librdkafka C consumer (Benchmarks/c/rawconsume.c), messages/s;
#   our consumer  — crowdpulse bench-consume (the Swift binding alone);
#   the pipeline  — crowdpulse bench-pipeline: everything `run` does, first message → all offsets committed.
# Prints the machine, every rate, and as the last line the ratio pipeline ÷ limit.
# Usage: run-pipeline-bench.sh PATH/TO/release/crowdpulse
set -euo pipefail
BIN=${1:?path to a release crowdpulse}
MESSAGES=${BENCH_MESSAGES:-2000000}
PARTITIONS=${BENCH_PARTITIONS:-64}
ROUNDS=${BENCH_ROUNDS:-2}
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d)
trap 'kill $BROKER 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"' EXIT

cc -O2 -o "$HERE/c/rawconsume" "$HERE/c/rawconsume.c" $(pkg-config --cflags --libs rdkafka)

echo "machine: $(nproc) cores, $(uname -m), librdkafka $(pkg-config --modversion rdkafka), $(date -u +%Y-%m-%dT%H:%M:%SZ)"
# The exactly_once run gets its own changelog and repartition topics: on the shared ones it would restore
# the first run's checkpoints and (rightly) find nothing left to do.
"$BIN" broker --topic "bench.events:$PARTITIONS" --topic bench.eos.changelog:6 --topic bench.eos.repartition:6 \
  --log-level warning > "$WORK/broker.out" &
BROKER=$!
for _ in $(seq 1 100); do [ -s "$WORK/broker.out" ] && break; sleep 0.1; done
BOOTSTRAP=$(head -n 1 "$WORK/broker.out" | cut -d= -f2)
echo "embedded broker: $BOOTSTRAP, topic bench.events with $PARTITIONS partitions (lz4), CrowdPulse's output topics"
# 2 000 events per second of event time: 2 000 000 events span ~17 minutes, so windows close, records and
# brand partials flow and detection runs during the measurement, as on a live stream.
"$BIN" generate --bootstrap-servers "$BOOTSTRAP" --topic bench.events --count "$MESSAGES" \
  --event-time-rate "${BENCH_EVENT_TIME_RATE:-2000}" --log-level warning

best() { sed -n 's/.* rate=\([0-9]*\).*/\1/p' | sort -n | tail -n 1; }
: > "$WORK/c.txt"; : > "$WORK/swift.txt"; : > "$WORK/pipeline.txt"; : > "$WORK/pipeline-eos.txt"
for round in $(seq 1 "$ROUNDS"); do
  "$HERE/c/rawconsume" "$BOOTSTRAP" bench.events "$MESSAGES" | tee -a "$WORK/c.txt"
  "$BIN" bench-consume --bootstrap-servers "$BOOTSTRAP" --topic bench.events --messages "$MESSAGES" | tee -a "$WORK/swift.txt"
done
# The pipeline writes its outputs into the same broker; one run keeps them within its memory limits.
"$BIN" bench-pipeline --bootstrap-servers "$BOOTSTRAP" --topic bench.events --messages "$MESSAGES" | tee -a "$WORK/pipeline.txt"
# The same under exactly_once (transactions: outputs, checkpoints and offsets commit together each second).
"$BIN" bench-pipeline --bootstrap-servers "$BOOTSTRAP" --topic bench.events --messages "$MESSAGES" \
  --set processing.guarantee=exactly_once --set topics.changelog=bench.eos.changelog \
  --set topics.repartition=bench.eos.repartition | tee -a "$WORK/pipeline-eos.txt"
C_RATE=$(best < "$WORK/c.txt")
SWIFT_RATE=$(best < "$WORK/swift.txt")
PIPELINE_RATE=$(best < "$WORK/pipeline.txt")
EOS_RATE=$(best < "$WORK/pipeline-eos.txt")
echo "limit (raw librdkafka C consumer, best of $ROUNDS): $C_RATE msg/s"
echo "CrowdPulse Swift consumer (best of $ROUNDS): $SWIFT_RATE msg/s"
echo "CrowdPulse full pipeline, at_least_once: $PIPELINE_RATE events/s"
echo "CrowdPulse full pipeline, exactly_once: $EOS_RATE events/s"
awk -v e="$EOS_RATE" -v p="$PIPELINE_RATE" 'BEGIN { printf "exactly_once / at_least_once = %.2f\n", e / p }' 
awk -v s="$SWIFT_RATE" -v c="$C_RATE" 'BEGIN { printf "consumer ratio swift/c = %.2f (target >= 0.80)\n", s / c }'
awk -v p="$PIPELINE_RATE" -v c="$C_RATE" 'BEGIN { printf "ratio pipeline/limit = %.3f (target >= 0.5)\n", p / c }'
