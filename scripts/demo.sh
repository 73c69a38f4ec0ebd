#!/usr/bin/env bash
# The main job, end to end: build, then run mqttlive over a sample capture
# (use --live for the loopback demo against a real Mosquitto).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)" --target mqttlive
bin=build/release/src/mqttlive
if [ "${1:-}" = "--live" ]; then
  exec bash scripts/live-demo.sh "$bin"
fi
for f in tests/data/captures/zeek_mqtt.pcap tests/data/captures/suricata-verify_mqtt5-pub-userpass.pcap; do
  echo "== $bin --read $f"
  "$bin" --read "$f"
done
