#!/usr/bin/env bash
# Static checks of everything under deploy/, dashboards/ and the alert rules.
# Needs: promtool (package prometheus), systemd-analyze and systemd-sysusers (systemd),
# python3 with PyYAML (python3-yaml). No network, no container engine, no cluster.
# Usage: tests/deploy/check_deploy.sh
# Writes every PromQL expression of the dashboards and rules to
# $PROMQL_OUT (default build/deploy-checks/promql-exprs.jsonl) for check_promql_metrics.sh.
# Last line: "N passed, N failed"; exit status non-zero on any failure.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
# shellcheck source=lib.sh
. "$here/lib.sh"
cd "$root" || exit 2
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
promql_out="${PROMQL_OUT:-$root/build/deploy-checks/promql-exprs.jsonl}"

for tool in promtool systemd-analyze systemd-sysusers; do
  command -v "$tool" >/dev/null || { echo "missing $tool (run scripts/setup.sh)" >&2; exit 2; }
done

# --- Prometheus -------------------------------------------------------------
check "promtool check rules deploy/prometheus/mqttlive-alerts.yml" \
  promtool check rules deploy/prometheus/mqttlive-alerts.yml
check "promtool check config deploy/prometheus/prometheus.yml" \
  promtool check config deploy/prometheus/prometheus.yml
compose_prom() {  # the compose Prometheus config, with the rules beside it as mounted
  cp deploy/compose/prometheus.yml deploy/prometheus/mqttlive-alerts.yml "$tmp/" &&
    promtool check config "$tmp/prometheus.yml"
}
check "promtool check config deploy/compose/prometheus.yml" compose_prom
check "promtool test rules tests/promtool/mqttlive-alerts.test.yml" \
  promtool test rules tests/promtool/mqttlive-alerts.test.yml
rule_sync() { diff -u deploy/kubernetes/prometheusrule.yaml <(scripts/gen-prometheusrule.sh --stdout); }
check "prometheusrule.yaml in sync with mqttlive-alerts.yml (scripts/gen-prometheusrule.sh)" rule_sync
check "alerts: labels, annotations, runbook sections, tests for every alert" \
  "$PY" "$here/alerts_validate.py"

# --- systemd ----------------------------------------------------------------
# verify wants ExecStart to exist: check a copy that runs /bin/true instead of the
# not-yet-installed binary; fail on any warning about the unit itself.
unit_verify() {
  sed 's#^ExecStart=[^ ]*#ExecStart=/bin/true#' deploy/systemd/mqttlive.service >"$tmp/mqttlive.service"
  local out rc
  out="$(systemd-analyze verify "$tmp/mqttlive.service" 2>&1)"; rc=$?
  printf '%s\n' "$out"
  [[ $rc -eq 0 ]] && ! grep -q 'mqttlive.service' <<<"$out"
}
check "systemd-analyze verify deploy/systemd/mqttlive.service" unit_verify
unit_security() {  # exposure score of the sandbox: 0 (locked down) .. 10 (unrestricted)
  sed 's#^ExecStart=[^ ]*#ExecStart=/bin/true#' deploy/systemd/mqttlive.service >"$tmp/mqttlive.service"
  local score
  score="$(systemd-analyze security --offline=true "$tmp/mqttlive.service" 2>&1 |
    sed -n 's/.*Overall exposure level for mqttlive.service: \([0-9.]*\).*/\1/p')"
  echo "exposure ${score:-unknown}"
  [[ -n "$score" ]] && awk -v s="$score" 'BEGIN { exit !(s <= 3.0) }'
}
check "systemd-analyze security: exposure <= 3.0" unit_security
sysusers() {
  mkdir -p "$tmp/root/etc" "$tmp/root/usr/lib/sysusers.d"
  cp deploy/systemd/mqttlive.sysusers "$tmp/root/usr/lib/sysusers.d/mqttlive.conf"
  systemd-sysusers --root="$tmp/root" && grep -q '^mqttlive:' "$tmp/root/etc/passwd"
}
check "systemd-sysusers creates the mqttlive user" sysusers

# --- YAML, Kubernetes, config, packaging -------------------------------------
yaml_syntax() {
  "$PY" - <<'EOF'
import glob, sys, yaml
files = [f for p in ("deploy/**/*.yaml", "deploy/**/*.yml", "tests/promtool/*.yml") for f in glob.glob(p, recursive=True)]
bad = 0
for f in sorted(files):
    try:
        with open(f) as fh:
            list(yaml.safe_load_all(fh))
    except yaml.YAMLError as e:
        bad += 1
        print(f"{f}: {e}")
print(f"{len(files)} YAML files, {bad} invalid")
sys.exit(1 if bad or not files else 0)
EOF
}
check "YAML syntax of deploy/ and tests/promtool/" yaml_syntax
check "example config deploy/mqttlive.yaml follows the config schema" \
  "$PY" "$here/mqttlive_config_schema.py" deploy/mqttlive.yaml
check "Kubernetes manifests (offline field and policy checks)" "$PY" "$here/k8s_validate.py"
check "Containerfile, compose and install paths" "$PY" "$here/packaging_validate.py"

# --- Grafana ----------------------------------------------------------------
check "dashboards: schema 39, datasource variable, null id, descriptions and units" \
  "$PY" "$here/dashboards_validate.py"

# --- PromQL -----------------------------------------------------------------
check "extract PromQL of dashboards and rules -> ${promql_out#"$root"/}" \
  "$PY" "$here/promql_exprs.py" extract "$promql_out"
check "every dashboard and rule expression parses (promtool)" \
  "$PY" "$here/promql_exprs.py" parse "$promql_out"

# --- with a built binary ----------------------------------------------------
# $MQTTLIVE_BINARY, or the first build*/src/mqttlive or build/PRESET/src/mqttlive;
# skipped while nothing is built.
bin="${MQTTLIVE_BINARY:-}"
if [[ -z "$bin" ]]; then
  for cand in build*/src/mqttlive build/*/src/mqttlive; do [[ -x "$cand" ]] && { bin="$cand"; break; }; done
fi
configs_load() {  # the real config parser: an offline run over an empty capture per config
  local f rc=0 cfgs
  cfgs="$("$PY" "$here/extract_configs.py" "$tmp/configs")" || return 1
  for f in deploy/mqttlive.yaml $cfgs; do
    if "$bin" --config.file "$f" --read "$tmp/configs/empty.pcap" >/dev/null; then
      echo "loads: ${f#"$tmp"/}"
    else
      echo "REJECTED: ${f#"$tmp"/}"; rc=1
    fi
  done
  return $rc
}
live_scrape() {  # scrape a live mqttlive on loopback; check the PromQL's metrics against it
  local port pid
  port="$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  "$bin" -i lo --broker-port 1 --web.listen-address "127.0.0.1:$port" >/dev/null 2>"$tmp/live.err" &
  pid=$!
  for _ in $(seq 50); do
    curl -sf "http://127.0.0.1:$port/metrics" >"$tmp/scrape.txt" 2>/dev/null && break
    sleep 0.1
  done
  kill "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  [[ -s "$tmp/scrape.txt" ]] || { cat "$tmp/live.err"; return 1; }
  "$PY" "$here/promql_exprs.py" metrics "$promql_out" "$tmp/scrape.txt"
}
if [[ -n "$bin" && -x "$bin" ]]; then
  check "the image installs every library $bin needs (readelf NEEDED -> dpkg)" \
    "$PY" "$here/packaging_validate.py" --binary "$bin"
  check "deploy/mqttlive.yaml and the ConfigMaps' configs load in $bin" configs_load
  if [[ "$(id -u)" -eq 0 ]] && command -v curl >/dev/null; then
    check "every metric the dashboards and alerts use is in a live scrape of $bin" live_scrape
  else
    skip "live scrape of $bin" "needs root (CAP_NET_RAW) and curl"
  fi
else
  skip "binary checks: runtime libraries, configs, live scrape" "no built mqttlive found; set MQTTLIVE_BINARY"
fi

summary
