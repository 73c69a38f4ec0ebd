#!/usr/bin/env python3
"""Checks what promtool does not about deploy/prometheus/mqttlive-alerts.yml:
  - every alert has a severity label (critical|warning|info) and summary, description
    and runbook_url annotations; runbook_url is docs/runbook.md#ANCHOR and the runbook
    has that section; the runbook's threshold table names every alert
  - tests/promtool/mqttlive-alerts.test.yml has, for every alert, a case where it fires
    and a case where it must not
"""
import os
import re
import sys

import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
RULES = os.path.join(ROOT, "deploy", "prometheus", "mqttlive-alerts.yml")
TESTS = os.path.join(ROOT, "tests", "promtool", "mqttlive-alerts.test.yml")
RUNBOOK = os.path.join(ROOT, "docs", "runbook.md")


def anchors(markdown):
    """GitHub-style anchors of the markdown headings."""
    out = set()
    for line in markdown.splitlines():
        m = re.match(r"#{1,6}\s+(.*)", line)
        if m:
            a = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-")
            out.add(a)
    return out


def main():
    errs = []
    with open(RULES) as f:
        rules = [r for g in yaml.safe_load(f)["groups"] for r in g["rules"] if "alert" in r]
    with open(RUNBOOK) as f:
        runbook = f.read()
    heads = anchors(runbook)
    thresholds = runbook.split("## Thresholds", 1)[1] if "## Thresholds" in runbook else ""
    with open(TESTS) as f:
        tests = yaml.safe_load(f)["tests"]
    fires, quiet = set(), set()
    for t in tests:
        for case in t.get("alert_rule_test", []):
            (fires if case.get("exp_alerts") else quiet).add(case["alertname"])
    names = [r["alert"] for r in rules]
    if len(set(names)) != len(names):
        errs.append("duplicate alert names")
    for r in rules:
        a = r["alert"]
        if (r.get("labels") or {}).get("severity") not in ("critical", "warning", "info"):
            errs.append(f"{a}: severity label must be critical, warning or info")
        ann = r.get("annotations") or {}
        for k in ("summary", "description", "runbook_url"):
            if not (ann.get(k) or "").strip():
                errs.append(f"{a}: no {k} annotation")
        url = ann.get("runbook_url", "")
        m = re.fullmatch(r"docs/runbook\.md#([\w-]+)", url)
        if not m:
            errs.append(f"{a}: runbook_url must be docs/runbook.md#anchor, is {url!r}")
        elif m.group(1) not in heads:
            errs.append(f"{a}: docs/runbook.md has no section for #{m.group(1)}")
        if a not in thresholds:
            errs.append(f"{a}: not in the runbook's '## Thresholds' table")
        if a not in fires:
            errs.append(f"{a}: no promtool test where it fires")
        if a not in quiet:
            errs.append(f"{a}: no promtool test where it must not fire")
    for e in errs:
        print(e)
    print(f"{len(rules)} alerts, {len(errs)} problems")
    return 1 if errs else 0


if __name__ == "__main__":
    sys.exit(main())
