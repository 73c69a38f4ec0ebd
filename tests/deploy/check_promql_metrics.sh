#!/usr/bin/env bash
# Checks the PromQL of the dashboards and alert rules against a real mqttlive scrape:
#   1. every expression parses (wrapped as recording rules for `promtool check rules`);
#   2. every mqttlive_* metric they name exists in the scrape (_bucket/_sum/_count
#      resolve to their histogram; metrics in $OPTIONAL_METRICS may be absent, by default
#      the two whose series appear only on first use: mqttlive_client_expired_seconds,
#      mqttlive_connects_refused_total).
# Usage: tests/deploy/check_promql_metrics.sh METRICS_FILE [EXPRS_JSONL]
#   METRICS_FILE  text exposition, e.g. curl -s localhost:9883/metrics > metrics.txt
#   EXPRS_JSONL   expressions extracted by check_deploy.sh (default: extracted afresh)
# Last line: "N passed, N failed"; exit status non-zero on any failure.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "$here/lib.sh"

if [[ $# -lt 1 || ! -r "$1" ]]; then
  echo "usage: $0 METRICS_FILE [EXPRS_JSONL]" >&2
  exit 2
fi
metrics="$1"
exprs="${2:-}"
if [[ -z "$exprs" ]]; then
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  exprs="$tmp/promql-exprs.jsonl"
  check "extract PromQL from dashboards and rules" "$PY" "$here/promql_exprs.py" extract "$exprs"
fi
check "every expression parses (promtool)" "$PY" "$here/promql_exprs.py" parse "$exprs"
check "every metric referenced exists in $(basename "$metrics")" "$PY" "$here/promql_exprs.py" metrics "$exprs" "$metrics"
summary
