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
