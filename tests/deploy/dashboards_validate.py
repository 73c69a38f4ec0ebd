#!/usr/bin/env python3
"""Checks the Grafana dashboards in dashboards/*.json:
  - valid JSON, schemaVersion 39, "id" null (no hard-coded numeric id), a stable
    non-empty uid unique across dashboards, a title
  - a templating variable `datasource` of type datasource (query prometheus), and every
    panel and target uses {"uid": "${datasource}"}, never a fixed datasource uid
  - every panel (rows excepted: they only group) has a description and a unit, a
    gridPos inside the 24-column grid, a unique id, and at least one query
  - the provisioning file loads the directory the compose file mounts the dashboards into
Usage: dashboards_validate.py [FILE...]
"""
import glob
import json
import os
import sys

import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DS_REF = "${datasource}"


def panels_of(panels):
    for p in panels or []:
        yield p
        yield from panels_of(p.get("panels"))


def unit_of(p):
    unit = ((p.get("fieldConfig") or {}).get("defaults") or {}).get("unit")
    if p.get("type") == "heatmap":
        unit = unit or ((p.get("options") or {}).get("yAxis") or {}).get("unit")
    return unit


def check(path, uids):
    errs = []
    name = os.path.relpath(path, ROOT)
    try:
        with open(path) as f:
            d = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        return [f"{name}: {e}"]
    if d.get("schemaVersion") != 39:
        errs.append(f"{name}: schemaVersion must be 39, is {d.get('schemaVersion')}")
    if "id" in d and d["id"] is not None:
        errs.append(f"{name}: dashboard id must be null, is {d['id']!r}")
    uid = d.get("uid")
    if not isinstance(uid, str) or not uid or len(uid) > 40:
        errs.append(f"{name}: needs a stable uid string (<= 40 chars)")
    elif uid in uids:
        errs.append(f"{name}: uid {uid} also used by {uids[uid]}")
    else:
        uids[uid] = name
    if not d.get("title"):
        errs.append(f"{name}: no title")
    variables = (d.get("templating") or {}).get("list") or []
    ds = [v for v in variables if v.get("name") == "datasource"]
    if not ds or ds[0].get("type") != "datasource" or ds[0].get("query") != "prometheus":
        errs.append(f"{name}: needs templating variable 'datasource' of type datasource, query prometheus")
    for v in variables:
        if v.get("type") == "query" and (v.get("datasource") or {}).get("uid") != DS_REF:
            errs.append(f"{name}: variable {v.get('name')} must use datasource {DS_REF}")
    ids = set()
    panels = list(panels_of(d.get("panels")))
    if not [p for p in panels if p.get("type") != "row"]:
        errs.append(f"{name}: no panels")
    for p in panels:
        where = f"{name}: panel {p.get('id')} '{p.get('title')}'"
        if p.get("id") in ids or not isinstance(p.get("id"), int):
            errs.append(f"{where}: panel id missing or duplicate")
        ids.add(p.get("id"))
        g = p.get("gridPos") or {}
        if not all(isinstance(g.get(k), int) for k in "hwxy") or g["x"] + g["w"] > 24:
            errs.append(f"{where}: bad gridPos {g}")
        if p.get("type") == "row":
            continue
        if not (p.get("description") or "").strip():
            errs.append(f"{where}: no description")
        if not unit_of(p):
            errs.append(f"{where}: no unit")
        if (p.get("datasource") or {}).get("uid") != DS_REF:
            errs.append(f"{where}: panel datasource must be {DS_REF}")
        targets = p.get("targets") or []
        if not targets:
            errs.append(f"{where}: no queries")
        for t in targets:
            if not (t.get("expr") or "").strip():
                errs.append(f"{where}: target {t.get('refId')} has no expr")
            if (t.get("datasource") or {}).get("uid") not in (None, DS_REF):
                errs.append(f"{where}: target {t.get('refId')} datasource must be {DS_REF}")
    return errs


def check_provisioning():
    errs = []
    prov = os.path.join(ROOT, "deploy", "grafana", "provisioning")
    with open(os.path.join(prov, "dashboards", "mqttlive.yaml")) as f:
        paths = {p["options"]["path"] for p in yaml.safe_load(f)["providers"]}
    with open(os.path.join(prov, "datasources", "prometheus.yaml")) as f:
        dss = yaml.safe_load(f)["datasources"]
    if not any(ds.get("type") == "prometheus" for ds in dss):
        errs.append("provisioning: no prometheus datasource")
    with open(os.path.join(ROOT, "deploy", "compose", "compose.yaml")) as f:
        vols = yaml.safe_load(f)["services"]["grafana"]["volumes"]
    mounted = {v.split(":")[1] for v in vols if v.split(":")[0].rstrip("/").endswith("dashboards")}
    if not paths & mounted:
        errs.append(f"provisioning: provider path {sorted(paths)} is not where compose mounts dashboards/ {sorted(mounted)}")
    return errs


def main(argv):
    files = argv[1:] or sorted(glob.glob(os.path.join(ROOT, "dashboards", "*.json")))
    if not files:
        print("no dashboards found")
        return 1
    uids, errs = {}, []
    for path in files:
        errs += check(path, uids)
    errs += check_provisioning()
    for e in errs:
        print(e)
    print(f"{len(files)} dashboards, {len(errs)} problems")
    return 1 if errs else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
