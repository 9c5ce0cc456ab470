#!/usr/bin/env bash
# A live stream at a fixed rate through `crowdpulse run`, three processes on one machine: the embedded broker,
# the generator (`crowdpulse generate --rate … --scenario crises`: an organic crisis and a coordinated attack
# on top of the background traffic) and the daemon. Prints, every 30 s, the daemon's resident memory,
# consumer lag and events processed; at the end the event→alert latency (`crowdpulse_alert_latency_seconds`:
# broker timestamp of the record that changed an alert → the alert produced) and the per-batch processing
# latency, as quantiles read from the histograms' buckets.
# Usage: run-live-bench.sh PATH/TO/release/crowdpulse   (LIVE_RATE, default 100000; LIVE_SECONDS, default 600;
# LIVE_SET: more `key=value` settings for the daemon, space-separated)
set -euo pipefail
BIN=${1:?path to a release crowdpulse}
RATE=${LIVE_RATE:-100000}
SECONDS_TO_RUN=${LIVE_SECONDS:-600}
PORT=${LIVE_PORT:-19733}
WORK=$(mktemp -d)
# In order: the daemon's final commit needs the broker.
trap 'kill $GEN 2>/dev/null || true; kill $DAEMON 2>/dev/null || true; wait $DAEMON 2>/dev/null || true
      kill $BROKER 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"' EXIT

echo "machine: $(nproc) cores, $(uname -m), $(date -u +%Y-%m-%dT%H:%M:%SZ); rate $RATE events/s for $SECONDS_TO_RUN s"
# The embedded broker keeps ~5 MiB per partition: at 100 000 events/s (~25 MB/s) 32 input partitions hold
# about 6 s of stream, so a consumer that falls further behind than that loses records to retention.
"$BIN" broker --no-default-topics --topic "crowdpulse.events:${LIVE_PARTITIONS:-32}" --topic crowdpulse.metrics:6 \
  --topic crowdpulse.alerts:6 --topic crowdpulse.late:6 --topic crowdpulse.deadletter:6 \
  --topic crowdpulse.changelog:${LIVE_PARTITIONS:-32} --topic crowdpulse.repartition:6 \
  --log-level warning > "$WORK/broker.out" &
BROKER=$!
for _ in $(seq 1 100); do [ -s "$WORK/broker.out" ] && break; sleep 0.1; done
BOOTSTRAP=$(head -n 1 "$WORK/broker.out" | cut -d= -f2)
# Detection on short windows (as `crowdpulse demo`), so that alerts fire and resolve within the run.
"$BIN" run --bootstrap-servers "$BOOTSTRAP" --http-listen "127.0.0.1:$PORT" --log-level warning \
  --set windows.size=10s --set windows.grace=5s --set windows.idle_close=10s \
  --set detection.window=60s --set detection.step=10s \
  --set alerts.for=10s --set alerts.keep_firing_for=60s --set alerts.cooldown=120s \
  $(for kv in ${LIVE_SET:-}; do printf -- '--set %s ' "$kv"; done) > "${LIVE_DAEMON_OUT:-$WORK/daemon.out}" 2>&1 &
DAEMON=$!
sleep 5
"$BIN" generate --bootstrap-servers "$BOOTSTRAP" --rate "$RATE" --duration "$SECONDS_TO_RUN" --scenario crises \
  --log-level warning > "$WORK/generate.out" 2>&1 &
GEN=$!

metric() { curl -s --max-time 5 "http://127.0.0.1:$PORT/metrics" | awk -v name="$1" '$1 == name { sum += $2 } END { printf "%.0f", sum }'; }
elapsed=0
# The daemon's CPU (user + system clock ticks) and events at the previous sample: the cost per event of
# each 30 s interval, to tell a cost that grows with the run from the machine's phases.
ticks() { awk '{ print $14 + $15 }' "/proc/$DAEMON/stat"; }
last_ticks=$(ticks)
last_events=0
while kill -0 "$GEN" 2>/dev/null; do
  sleep 30
  elapsed=$((elapsed + 30))
  now_ticks=$(ticks)
  now_events=$(metric crowdpulse_events_accepted_total)
  interval_us=$(awk -v t="$((now_ticks - last_ticks))" -v e="$((now_events - last_events))" -v hz="$(getconf CLK_TCK)" \
    'BEGIN { printf "%.1f", (e > 0 ? t / hz * 1e6 / e : 0) }')
  last_ticks=$now_ticks
  last_events=$now_events
  rss=$(awk '/VmRSS/ { printf "%d", $2 / 1024 }' "/proc/$DAEMON/status")
  lag=$(curl -s "http://127.0.0.1:$PORT/metrics" | awk '/^crowdpulse_consumer_lag\{/ { sum += $2 } END { printf "%d", sum }')
  echo "t=${elapsed}s rss_mib=$rss consumer_lag=$lag events_accepted=$now_events cpu_us_per_event=$interval_us" \
    "state_bytes=$(metric crowdpulse_state_bytes) dedup_entries=$(metric crowdpulse_dedup_entries)" \
    "windows_open=$(metric crowdpulse_windows_open) checkpoint_mb=$(( $(metric crowdpulse_checkpoint_bytes_total) / 1000000 ))" \
    "detector_entities=$(curl -s "http://127.0.0.1:$PORT/metrics" | awk '/^crowdpulse_detector_entities/ { s += $2 } END { printf "%d", s }')"
done
cat "$WORK/generate.out"
sleep 15  # the last windows close (grace, then idle close)
# The daemon's CPU time (user + system, from /proc): at a fixed input rate, its cost per event.
awk -v events="$(metric crowdpulse_events_accepted_total)" -v hz="$(getconf CLK_TCK)" '{
  cpu = ($14 + $15) / hz; printf "daemon cpu: %.1f s for %d events (%.2f us/event)\n", cpu, events, events ? cpu * 1e6 / events : 0
}' "/proc/$DAEMON/stat"
curl -s "http://127.0.0.1:$PORT/metrics" > "$WORK/metrics.txt"
quantiles() {
  awk -v name="$1" '
    index($0, name "_bucket{") == 1 { match($0, /le="[^"]*"/); le = substr($0, RSTART + 4, RLENGTH - 5); n++; bound[n] = le; count[n] = $NF }
    index($0, name "_count") == 1 { total = $NF }
    index($0, name "_sum") == 1 { sum = $NF }
    END {
      if (total == 0) { printf "%s: no observations\n", name; exit }
      split("0.5 0.99", qs, " ")
      line = sprintf("%s: count=%d mean=%.3fs", name, total, sum / total)
      for (q in qs) for (i = 1; i <= n; i++) if (count[i] >= qs[q] * total) { line = line sprintf(" p%g<=%ss", qs[q] * 100, bound[i]); break }
      print line
    }' "$WORK/metrics.txt"
}
quantiles crowdpulse_alert_latency_seconds
quantiles crowdpulse_event_processing_latency_seconds
echo "alert records: $(awk '/^crowdpulse_records_produced_total\{.*alerts/ { s += $2 } END { printf "%d", s }' "$WORK/metrics.txt")"
