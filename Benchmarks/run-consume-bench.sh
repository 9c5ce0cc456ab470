#!/usr/bin/env bash
# Raw librdkafka C consumer vs CrowdPulse's Swift consumer on the same pre-filled topic of the embedded
# broker; prints both rates and their ratio (last line). Usage: run-consume-bench.sh PATH/TO/crowdpulse
set -euo pipefail
BIN=${1:?path to a release crowdpulse}
MESSAGES=${BENCH_MESSAGES:-2000000}
PARTITIONS=${BENCH_PARTITIONS:-64}
ROUNDS=${BENCH_ROUNDS:-3}
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d)
trap 'kill $BROKER 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"' EXIT

cc -O2 -o "$HERE/c/rawconsume" "$HERE/c/rawconsume.c" $(pkg-config --cflags --libs rdkafka)

echo "machine: $(nproc) cores, $(uname -m), librdkafka $(pkg-config --modversion rdkafka), $(date -u +%Y-%m-%dT%H:%M:%SZ)"
"$BIN" broker --no-default-topics --topic "bench.events:$PARTITIONS" --log-level warning > "$WORK/broker.out" &
BROKER=$!
for _ in $(seq 1 100); do [ -s "$WORK/broker.out" ] && break; sleep 0.1; done
BOOTSTRAP=$(head -n 1 "$WORK/broker.out" | cut -d= -f2)
echo "embedded broker: $BOOTSTRAP, topic bench.events with $PARTITIONS partitions (lz4)"
"$BIN" generate --bootstrap-servers "$BOOTSTRAP" --topic bench.events --count "$MESSAGES" --log-level warning

best() { sed -n 's/.* rate=\([0-9]*\).*/\1/p' | sort -n | tail -n 1; }
: > "$WORK/c.txt"; : > "$WORK/swift.txt"
for round in $(seq 1 "$ROUNDS"); do
  "$HERE/c/rawconsume" "$BOOTSTRAP" bench.events "$MESSAGES" | tee -a "$WORK/c.txt"
  "$BIN" bench-consume --bootstrap-servers "$BOOTSTRAP" --topic bench.events --messages "$MESSAGES" | tee -a "$WORK/swift.txt"
done
C_RATE=$(best < "$WORK/c.txt")
SWIFT_RATE=$(best < "$WORK/swift.txt")
echo "best of $ROUNDS: raw librdkafka C consumer $C_RATE msg/s, CrowdPulse Swift consumer $SWIFT_RATE msg/s"
awk -v s="$SWIFT_RATE" -v c="$C_RATE" 'BEGIN { printf "ratio swift/c = %.2f (target >= 0.80)\n", s / c }'
