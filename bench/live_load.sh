#!/usr/bin/env bash
# Live loopback load test: a real Mosquitto on a random 127.0.0.1 port, mqttlive
# capturing on `lo` (metrics on 127.0.0.1), MQTT traffic for DURATION seconds,
# then packets/s seen and drops from mqttlive's own /metrics.
#
#   bench/live_load.sh [BUILD_DIR=build/bench]
#   env: DURATION=10  RATE=max (replay as fast as tcpreplay can, or packets/s)
#        PACKETS (replayed frames; default DURATION x RATE, or DURATION x 450000 for max)
#        CLIENTS=20000 (replayed clients)
#        CONNS=200 INFLIGHT=4 (real clients)  PHASES="clients replay"
#
# Phases (each DURATION seconds, metrics scraped before and after):
#   clients  mqttlive_loadgen: CONNS real MQTT connections to Mosquitto, each
#            keeping INFLIGHT PINGREQs outstanding (real TCP, real broker).
#   replay   a capture from mqttlive_gen (CLIENTS clients, this broker port,
#            127.0.0.0/8 addresses) replayed onto lo with tcpreplay at RATE
#            packets/s (--topspeed for max). The frames' destination MAC is not lo's, so the IP
#            stack drops them after the capture has seen them: nothing but the
#            capture receives this traffic. Skipped if tcpreplay is missing
#            (Debian package tcpreplay, listed in scripts/setup.sh).
# Needs root (or CAP_NET_RAW) for the capture and tcpreplay. Only 127.0.0.1 is
# ever targeted; every process started here is stopped on exit.
set -euo pipefail

BUILD=${1:-build/bench}
DURATION=${DURATION:-10}
RATE=${RATE:-max}
CLIENTS=${CLIENTS:-20000}
CONNS=${CONNS:-200}
INFLIGHT=${INFLIGHT:-4}
PHASES=${PHASES:-clients replay}
MQTTLIVE=$BUILD/src/mqttlive
GEN=$BUILD/bench/mqttlive_gen
LOADGEN=$BUILD/bench/mqttlive_loadgen

for b in "$MQTTLIVE" "$GEN" "$LOADGEN"; do
  [ -x "$b" ] || { echo "live_load: $b not built (cmake --build $BUILD)" >&2; exit 2; }
done
command -v mosquitto >/dev/null || { echo "live_load: mosquitto not installed" >&2; exit 2; }
command -v curl >/dev/null || { echo "live_load: curl not installed" >&2; exit 2; }
(( DURATION >= 1 && DURATION <= 120 )) || { echo "live_load: DURATION must be 1..120" >&2; exit 2; }

tmp=$(mktemp -d /tmp/mqttlive-live-load-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
broker_port=$(free_port)
web_port=$(free_port)

cat >"$tmp/mosquitto.conf" <<EOF
listener $broker_port 127.0.0.1
allow_anonymous true
persistence false
log_dest none
max_connections -1
EOF
mosquitto -c "$tmp/mosquitto.conf" >"$tmp/mosquitto.log" 2>&1 &
pids+=($!)

"$MQTTLIVE" -i lo --broker-port "$broker_port" --web.listen-address "127.0.0.1:$web_port" \
  --events.output "$tmp/events.jsonl" --log.level warn >"$tmp/mqttlive.log" 2>&1 &
mqttlive_pid=$!
pids+=($mqttlive_pid)

metrics() { curl -sf --max-time 5 "http://127.0.0.1:$web_port/metrics"; }
for _ in $(seq 100); do metrics >/dev/null 2>&1 && break; sleep 0.1; done
metrics >/dev/null || { echo "live_load: mqttlive did not come up:" >&2; cat "$tmp/mqttlive.log" >&2; exit 1; }
sleep 0.5

# Sum of a metric family's samples (all label sets).
metric_sum() { awk -v n="$1" '$1 == n || index($1, n "{") == 1 { s += $NF } END { printf "%.0f\n", s }'; }
# mqttlive's CPU time so far (user + system), in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$mqttlive_pid/stat"; }
snapshot() {
  local m
  m=$(metrics)
  echo "$(metric_sum mqttlive_capture_packets_total <<<"$m") $(metric_sum mqttlive_capture_dropped_packets_total <<<"$m") $(cpu_ticks)"
}
# Waits until mqttlive's packet counter stops moving (it publishes every 200 ms).
settle() {
  local prev="" cur
  for _ in $(seq 30); do
    sleep 0.5
    cur=$(snapshot)
    [ "$cur" = "$prev" ] && break
    prev=$cur
  done
}

report() {  # name before after seconds sent
  local name=$1 p0 d0 c0 p1 d1 c1
  read -r p0 d0 c0 <<<"$2"
  read -r p1 d1 c1 <<<"$3"
  local seen=$((p1 - p0)) drops=$((d1 - d0))
  awk -v n="$name" -v s="$seen" -v d="$drops" -v t="$4" -v sent="$5" -v cpu="$(((c1 - c0)))" -v hz="$(getconf CLK_TCK)" 'BEGIN {
    printf "%-8s %10d packets seen in %5.2f s = %9.0f packets/s; capture drops %d", n, s, t, s / t, d
    if (sent > 0) printf "; sent %d (%.0f packets/s)", sent, sent / t
    printf "; mqttlive CPU %.2f s\n", cpu / hz }'
}

summary=()
echo "mosquitto on 127.0.0.1:$broker_port, mqttlive -i lo (pid $mqttlive_pid), metrics on 127.0.0.1:$web_port"

for phase in $PHASES; do
  case $phase in
    clients)
      before=$(snapshot)
      t0=$(date +%s.%N)
      timeout $((DURATION + 15)) "$LOADGEN" --port "$broker_port" --conns "$CONNS" --inflight "$INFLIGHT" \
        --seconds "$DURATION" | tee "$tmp/loadgen.out"
      t1=$(date +%s.%N)
      settle
      after=$(snapshot)
      summary+=("$(report clients "$before" "$after" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" 0)")
      ;;
    replay)
      if ! command -v tcpreplay >/dev/null; then
        summary+=("replay   skipped: tcpreplay not installed (apt-get install tcpreplay)")
        continue
      fi
      if [ "$RATE" = max ]; then
        packets=${PACKETS:-$((DURATION * 450000))}
        speed=(--topspeed)
      else
        packets=${PACKETS:-$((RATE * DURATION))}
        speed=(--pps="$RATE")
      fi
      "$GEN" --out "$tmp/replay.pcap" --clients "$CLIENTS" --packets "$packets" --broker-port "$broker_port" \
        --ramp 2 >"$tmp/gen.out"
      head -1 "$tmp/gen.out"
      before=$(snapshot)
      t0=$(date +%s.%N)
      # -K: preload the file so disk reads do not limit the rate.
      timeout $((DURATION * 3 + 30)) tcpreplay -q -K "${speed[@]}" -i lo "$tmp/replay.pcap" >"$tmp/tcpreplay.out" 2>&1 || {
        cat "$tmp/tcpreplay.out" >&2
        exit 1
      }
      t1=$(date +%s.%N)
      grep -E 'Actual|Rated|Statistics|Successful|Failed' "$tmp/tcpreplay.out" | sed 's/^/  tcpreplay: /' || true
      sent=$(awk '/Successful packets:/ { print $3 }' "$tmp/tcpreplay.out")
      # Rate over tcpreplay's own send time (the -K preload is not traffic).
      secs=$(awk '/Actual:/ { for (i = 1; i <= NF; ++i) if ($i == "in") print $(i + 1) }' "$tmp/tcpreplay.out")
      [ -n "$secs" ] || secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
      settle
      after=$(snapshot)
      summary+=("$(report replay "$before" "$after" "$secs" "${sent:-0}")")
      ;;
    *) echo "live_load: unknown phase $phase" >&2; exit 2 ;;
  esac
done

kill -0 "$mqttlive_pid" 2>/dev/null || { echo "live_load: mqttlive died:" >&2; cat "$tmp/mqttlive.log" >&2; exit 1; }
m=$(metrics)
echo
echo "== mqttlive on lo: packets seen by the engine (mqttlive_capture_packets_total) and drops"
printf '%s\n' "${summary[@]}"
echo "totals: packets $(metric_sum mqttlive_capture_packets_total <<<"$m"), dropped $(metric_sum mqttlive_capture_dropped_packets_total <<<"$m"), open connections $(awk '$1 ~ /^mqttlive_connections\{/ { s += $NF } END { print s + 0 }' <<<"$m")"
