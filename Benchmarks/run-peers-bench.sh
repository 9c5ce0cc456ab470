#!/usr/bin/env bash
# Quix Streams vs CrowdPulse on the same pre-filled topic of the embedded broker (tumbling 60 s count per
# subject for Quix; CrowdPulse's full pipeline, which computes every metric). Both are timed from the first
# record processed to the last; CrowdPulse also to all its offsets committed. Prints the rates and the ratios,
# the one on the same measure last. Usage: run-peers-bench.sh PATH/TO/crowdpulse PYTHON
set -euo pipefail
BIN=${1:?path to a release crowdpulse}
PY=${2:?python with quixstreams and confluent-kafka}
MESSAGES=${PEER_MESSAGES:-500000}
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d)
trap 'kill $BROKER 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"' EXIT

echo "machine: $(nproc) cores, $(uname -m), $(date -u +%Y-%m-%dT%H:%M:%SZ); quixstreams $("$PY" -c 'import quixstreams; print(quixstreams.__version__)' 2>/dev/null)"
"$BIN" broker --no-default-topics --topic bench.events:16 --topic crowdpulse.metrics:4 --topic crowdpulse.late:4 \
  --topic crowdpulse.deadletter:4 --topic crowdpulse.repartition:4 --log-level warning > "$WORK/broker.out" &
BROKER=$!
for _ in $(seq 1 100); do [ -s "$WORK/broker.out" ] && break; sleep 0.1; done
BOOTSTRAP=$(head -n 1 "$WORK/broker.out" | cut -d= -f2)
"$BIN" generate --bootstrap-servers "$BOOTSTRAP" --topic bench.events --count "$MESSAGES" --log-level warning

"$PY" "$HERE/peers/quix_count.py" "$BOOTSTRAP" bench.events "$MESSAGES" 2>/dev/null | tee "$WORK/quix.txt"
"$PY" "$HERE/peers/crowdpulse_run.py" "$BIN" "$BOOTSTRAP" bench.events "$MESSAGES" 19731 | tee "$WORK/crowdpulse.txt"
QUIX=$(sed -n 's/.* rate=\([0-9]*\).*/\1/p' "$WORK/quix.txt")
OURS=$(sed -n 's/.* rate=\([0-9]*\).*/\1/p' "$WORK/crowdpulse.txt")
COMMITTED=$(sed -n 's/.* committed_rate=\([0-9]*\).*/\1/p' "$WORK/crowdpulse.txt")
awk -v o="$OURS" -v c="$COMMITTED" -v q="$QUIX" 'BEGIN {
  if (q == 0) { print "quix did not finish"; exit }
  printf "ratio crowdpulse/quix, crowdpulse timed to all offsets committed = %.1f\n", c / q
  printf "ratio crowdpulse/quix, both timed first to last record processed = %.1f (target >= 20)\n", o / q }'
