#!/usr/bin/env bash
# Live demo on loopback: a real Mosquitto, a well-behaved subscriber, a client
# that goes silent with its socket open, and one that vanishes without
# DISCONNECT; mqttlive watches `lo` and prints what it sees. ~25 s, cleans up.
set -euo pipefail
bin=${1:-build/release/src/mqttlive}
cd "$(dirname "$0")/.."
port=18883 web=19883 tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\n' $port >"$tmp/mosquitto.conf"
mosquitto -c "$tmp/mosquitto.conf" 2>"$tmp/mosquitto.log" & pids+=($!)
"$bin" -i lo --broker-port $port --web.listen-address 127.0.0.1:$web 2>"$tmp/mqttlive.log" & pids+=($!)
sleep 1
echo "== mqttlive events (JSON lines) =="
mosquitto_sub -h 127.0.0.1 -p $port -t demo/# -k 5 -i demo-subscriber >/dev/null & pids+=($!)
# keepalive 3, then silence with the socket held open: mqttlive reports keepalive_expired
# at 4.5 s, then Mosquitto closes it (broker_close_keepalive).
python3 - "$port" <<'PY' & pids+=($!)
import sys, time
sys.path.insert(0, "tests/live")
from mqtt_client import Client
c = Client(int(sys.argv[1]), "demo-silent", 3)
time.sleep(30)
PY
# A client that vanishes without DISCONNECT.
python3 - "$port" <<'PY'
import sys, time
sys.path.insert(0, "tests/live")
from mqtt_client import Client
c = Client(int(sys.argv[1]), "demo-vanishing", 10)
time.sleep(1)
c.close_without_disconnect()
PY
mosquitto_pub -h 127.0.0.1 -p $port -t demo/hello -m hi -i demo-publisher
sleep 10
echo "== half-open connections now: curl http://127.0.0.1:$web/connections =="
curl -s http://127.0.0.1:$web/connections; echo
echo "== selected metrics: curl http://127.0.0.1:$web/metrics =="
curl -s http://127.0.0.1:$web/metrics | grep -E '^mqttlive_(connections\{|connections_closed_total|keepalive_expirations_total)' | grep -v ' 0$' || true
