#!/usr/bin/env bash
# The one test command: installs what is missing, builds, runs every test.
# README and .ci/run both call exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
preset=${MQTTLIVE_PRESET:-ci}
cmake --preset "$preset" >/dev/null
cmake --build --preset "$preset" -j "$(nproc)"
ctest --preset "$preset"
# Hardening: every libFuzzer target for a bounded time over its seed corpus
# (fails on any crash, hang or leak), then the unit suite under ASan+UBSan.
# One command per line: under set -e a failure inside an && list would not stop the script.
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz -j "$(nproc)"
ctest --preset fuzz
cmake --preset asan -DMQTTLIVE_BUILD_BENCH=OFF >/dev/null
cmake --build --preset asan -j "$(nproc)"
ctest --preset asan -L unit
