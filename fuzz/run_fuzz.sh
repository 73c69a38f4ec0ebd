#!/usr/bin/env bash
# run_fuzz.sh FUZZER SEED_DIR WORK_DIR SECONDS [REGRESSION_DIR]
# Replays the inputs of past findings (fuzz/regressions/<target>, if any), then
# runs one libFuzzer target for SECONDS over its seeds (read-only; new inputs go
# to WORK_DIR/corpus). Exits non-zero on any crash, leak, timeout or OOM, with
# the reproducer left in WORK_DIR/artifacts/. FUZZ_FLAGS adds libFuzzer flags.
set -euo pipefail
fuzzer=$1 seeds=$2 work=$3 seconds=$4 regressions=${5:-}
rm -rf "$work"
mkdir -p "$work/corpus" "$work/artifacts"
log="$work/fuzz.log"
shopt -s nullglob
past=()
[ -n "$regressions" ] && past=("$regressions"/*)
if [ "${#past[@]}" -gt 0 ]; then
  if ! "$fuzzer" -rss_limit_mb=1024 -timeout=10 -artifact_prefix="$work/artifacts/" "${past[@]}" >"$log" 2>&1; then
    echo "$(basename "$fuzzer"): a past finding in $regressions fails again"
    tail -n 60 "$log"
    exit 1
  fi
fi
set +e
# shellcheck disable=SC2086
"$fuzzer" -max_total_time="$seconds" -rss_limit_mb=1024 -timeout=10 -max_len=65536 \
  -print_final_stats=1 -artifact_prefix="$work/artifacts/" ${FUZZ_FLAGS:-} "$work/corpus" "$seeds" >"$log" 2>&1
rc=$?
set -e
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
echo "$(basename "$fuzzer"): ${execs:-?} executions in ${seconds}s, exit code $rc"
if [ "$rc" -ne 0 ]; then
  tail -n 60 "$log"
  ls -l "$work/artifacts/"
  exit 1
fi
