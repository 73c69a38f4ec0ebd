#!/usr/bin/env python3
"""PromQL expressions of the dashboards and the alert rules.

  promql_exprs.py extract OUT.jsonl   write every expression, one JSON object a line:
                                      {"source", "expr" (as written), "promql" (Grafana
                                      variables substituted, or null), "metrics" [names]}
  promql_exprs.py parse EXPRS.jsonl   check each expression parses: all are wrapped as
                                      recording rules in a temporary file for `promtool check rules`
  promql_exprs.py metrics EXPRS.jsonl SCRAPE
                                      check every mqttlive_* metric named exists in a /metrics scrape
"""
import glob
import json
import os
import re
import subprocess
import sys
import tempfile

import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
RULES = os.path.join(ROOT, "deploy", "prometheus", "mqttlive-alerts.yml")
DASHBOARDS = sorted(glob.glob(os.path.join(ROOT, "dashboards", "*.json")))
# Metrics that legitimately have no series in a fresh scrape: their label values exist only
# at run time (a CONNACK code, an expired client's id), and prometheus-cpp does not expose a
# family without series. Override with OPTIONAL_METRICS="..." (space separated).
OPTIONAL = set(os.environ.get("OPTIONAL_METRICS",
                              "mqttlive_client_expired_seconds mqttlive_connects_refused_total").split())

# Grafana's built-in interval variables -> a duration; user variables -> a match-all regex.
GRAFANA_VARS = [
    (re.compile(r"\$__rate_interval|\$\{__rate_interval\}"), "5m"),
    (re.compile(r"\$__interval|\$\{__interval\}"), "1m"),
    (re.compile(r"\$__range|\$\{__range\}"), "1h"),
    (re.compile(r"\$\{?__range_s\}?"), "3600"),
    (re.compile(r"\$\{(\w+)(:\w+)?\}|\[\[(\w+)\]\]|\$(\w+)"), ".*"),
]
STRING = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`')
METRIC = re.compile(r"(?<![\w:])(mqttlive_[A-Za-z0-9_:]*)")


def substitute(expr):
    for pat, repl in GRAFANA_VARS:
        expr = pat.sub(repl, expr)
    return expr


def metric_names(expr):
    """mqttlive_* identifiers outside string literals (label names never use the prefix)."""
    return sorted(set(METRIC.findall(STRING.sub('""', expr))))


def walk_panels(panels):
    for p in panels or []:
        yield p
        yield from walk_panels(p.get("panels"))


def extract():
    out = []
    with open(RULES) as f:
        rules = yaml.safe_load(f)
    for g in rules["groups"]:
        for r in g["rules"]:
            name = r.get("alert") or r.get("record")
            out.append({"source": f"rules:{g['name']}/{name}", "expr": r["expr"], "promql": r["expr"]})
    for path in DASHBOARDS:
        with open(path) as f:
            d = json.load(f)
        base = os.path.relpath(path, ROOT)
        for p in walk_panels(d.get("panels")):
            for t in p.get("targets", []):
                if t.get("expr"):
                    out.append({"source": f"{base}:panel {p.get('id')} '{p.get('title')}' {t.get('refId')}",
                                "expr": t["expr"], "promql": substitute(t["expr"])})
        for v in d.get("templating", {}).get("list", []):
            if v.get("type") != "query":
                continue
            q = v.get("query")
            q = q.get("query", "") if isinstance(q, dict) else (q or "")
            # label_values()/query_result() are Grafana functions, not PromQL: names only.
            out.append({"source": f"{base}:variable {v['name']}", "expr": q, "promql": None})
    for e in out:
        e["metrics"] = metric_names(e["expr"])
    return out


def load(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def promtool_check(rule_exprs, tmpdir):
    path = os.path.join(tmpdir, "exprs.rules.yml")
    rules = [{"record": f"check:expr_{i}", "expr": e} for i, e in enumerate(rule_exprs)]
    with open(path, "w") as f:
        yaml.safe_dump({"groups": [{"name": "promql-parse-check", "rules": rules}]}, f, sort_keys=False)
    r = subprocess.run(["promtool", "check", "rules", path], capture_output=True, text=True)
    return r.returncode == 0, (r.stdout + r.stderr).strip()


def cmd_parse(path):
    exprs = [e for e in load(path) if e.get("promql")]
    if not exprs:
        print("no PromQL expressions found")
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        ok, _ = promtool_check([e["promql"] for e in exprs], tmp)
        if ok:
            print(f"{len(exprs)} expressions parse")
            return 0
        bad = 0
        for e in exprs:  # find the culprits one by one
            ok1, msg = promtool_check([e["promql"]], tmp)
            if not ok1:
                bad += 1
                print(f"does not parse: {e['source']}\n  {e['promql']}\n  {msg}")
        return 1 if bad else 0


def scrape_names(path):
    samples, families = set(), {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            if line.startswith("#"):
                parts = line.split()
                if len(parts) >= 3 and parts[1] in ("TYPE", "HELP"):
                    families.setdefault(parts[2], None)
                    if parts[1] == "TYPE" and len(parts) >= 4:
                        families[parts[2]] = parts[3]
                continue
            m = re.match(r"[A-Za-z_:][A-Za-z0-9_:]*", line)
            if m:
                samples.add(m.group(0))
    return samples, families


def resolve(name, samples, families):
    """'sample' if series exist, 'declared' if only # TYPE/# HELP names it, else None."""
    if name in samples:
        return "sample"
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix):
            if families.get(name[: -len(suffix)]) in ("histogram", "summary", "gaugehistogram"):
                return "declared"
    if name in families:
        return "declared"
    if name.endswith("_total") and families.get(name[:-6]) == "counter":  # OpenMetrics family name
        return "declared"
    return None


def cmd_metrics(path, scrape):
    exprs = load(path)
    samples, families = scrape_names(scrape)
    if not samples and not families:
        print(f"{scrape}: no metrics in the scrape")
        return 1
    used = {}
    for e in exprs:
        for m in e["metrics"]:
            used.setdefault(m, []).append(e["source"])
    missing = 0
    for name in sorted(used):
        state = resolve(name, samples, families)
        if state == "sample":
            continue
        if state == "declared":
            print(f"note: {name} declared but has no series yet")
            continue
        if name in OPTIONAL:
            print(f"skip: {name} absent (opt-in metric)")
            continue
        missing += 1
        print(f"missing: {name} (used by {len(used[name])}: {used[name][0]}, ...)")
    print(f"{len(used)} metric names referenced, {missing} missing from {scrape}")
    return 1 if missing else 0


def main(argv):
    if len(argv) == 3 and argv[1] == "extract":
        exprs = extract()
        os.makedirs(os.path.dirname(os.path.abspath(argv[2])), exist_ok=True)
        with open(argv[2], "w") as f:
            for e in exprs:
                f.write(json.dumps(e) + "\n")
        print(f"{len(exprs)} expressions -> {argv[2]}")
        return 0 if exprs else 1
    if len(argv) == 3 and argv[1] == "parse":
        return cmd_parse(argv[2])
    if len(argv) == 4 and argv[1] == "metrics":
        return cmd_metrics(argv[2], argv[3])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
