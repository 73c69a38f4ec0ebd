#!/usr/bin/env python3
"""Schema of mqttlive.yaml (the keys the operator may set), for the example config
and the configs embedded in the Kubernetes ConfigMaps. Mirrors the keys and ranges
src/config.cpp accepts; keep the two in step.

  mqttlive_config_schema.py FILE...   exit 1 and list the problems if any file is off
"""
import sys

import yaml

EVENTS = {"connected", "connect_refused", "keepalive_expired", "takeover", "closed", "open_at_end",
          "midstream", "keepalive_learned", "summary"}
NUM = (int, float)

# section -> key -> (type, check or None)
SCHEMA = {
    "capture": {
        "interfaces": (list, lambda v: v and all(isinstance(i, str) and i for i in v) and len(set(v)) == len(v)),
        "snaplen": (int, lambda v: 64 <= v <= 262144),
        "buffer_size_bytes": (int, lambda v: 1 << 20 <= v <= 2**31 - 1),
        "timeout_ms": (int, lambda v: 1 <= v <= 1000),
    },
    "keepalive": {
        "factor": (NUM, lambda v: 1.0 <= v <= 10.0),
        "enforcement_grace_seconds": (NUM, lambda v: v >= 0),
        "no_keepalive_idle_seconds": (NUM, lambda v: v > 0),
        "close_settle_seconds": (NUM, lambda v: 0 < v <= 60),
    },
    "limits": {
        "max_flows": (int, lambda v: 1 <= v <= 2**32 - 1),
        "max_buffered_bytes": (int, lambda v: v >= 65536),
        "flow_buffer_bytes": (int, lambda v: 4096 <= v <= 2**32 - 1),
        "max_packet_size": (int, lambda v: 16 <= v <= 2**32 - 1),
        "idle_flow_timeout_seconds": (NUM, lambda v: 0 <= v <= 1e9),
    },
    "metrics": {
        "listen_address": (str, lambda v: ":" in v),
        "path": (str, lambda v: v.startswith("/")),
        "per_client": (dict, None),
        "basic_auth": (dict, None),
        "tls": (dict, None),
    },
    "events": {
        "output": (str, lambda v: bool(v)),
        "types": (list, lambda v: set(v) <= EVENTS),
    },
    "state": {
        "file": (str, None),
        "max_age_seconds": (NUM, lambda v: 0 < v <= 1e9),
    },
    "detectors": {k: (dict, None) for k in ("flapping", "storm", "idle_timeout")},
}
DETECTORS = {
    "flapping": {"window_seconds": (int, lambda v: 10 <= v <= 86400), "connects": (int, lambda v: 2 <= v <= 10000),
                 "max_client_ids": (int, lambda v: 1 <= v <= 1000000), "top_n": (int, lambda v: 0 <= v <= 100)},
    "storm": {"window_seconds": (int, lambda v: 1 <= v <= 60), "factor": (NUM, lambda v: 1 < v <= 1000),
              "min_rate": (NUM, lambda v: 0 < v <= 1e6), "baseline_seconds": (NUM, lambda v: 60 <= v <= 604800)},
    "idle_timeout": {"min_closes": (int, lambda v: 2 <= v <= 256), "min_share": (NUM, lambda v: 0 < v <= 1),
                     "tolerance_seconds": (NUM, lambda v: 0 < v <= 60)},
}
TLS = {"cert_file": (str, lambda v: bool(v)), "key_file": (str, lambda v: bool(v)),
       "client_ca_file": (str, lambda v: bool(v))}
BASIC_AUTH = {"username": (str, lambda v: bool(v) and ":" not in v), "password_file": (str, lambda v: bool(v))}
PER_CLIENT = {"enabled": (bool, None), "max_series": (int, lambda v: 1 <= v <= 10000), "hash_client_id": (bool, None)}
LISTENER = {"port": (int, lambda v: 1 <= v <= 65535), "kind": (str, lambda v: v in ("mqtt", "tls", "websocket")),
            "proxy_protocol": (bool, None), "keepalive_seconds": (int, lambda v: 1 <= v <= 65535)}


def _keys(where, obj, schema, errors):
    if not isinstance(obj, dict):
        errors.append(f"{where}: must be a mapping")
        return
    for k, v in obj.items():
        if k not in schema:
            errors.append(f"{where}.{k}: unknown key")
            continue
        typ, ok = schema[k]
        if isinstance(v, bool) and typ is not bool:  # YAML yes/no are not numbers here
            errors.append(f"{where}.{k}: must be {typ}, got a boolean")
        elif not isinstance(v, typ):
            errors.append(f"{where}.{k}: must be {typ}, got {v!r}")
        elif ok and not ok(v):
            errors.append(f"{where}.{k}: invalid value {v!r}")


def check_config(cfg, where="mqttlive.yaml"):
    """Returns a list of problems (empty = valid)."""
    errors = []
    if not isinstance(cfg, dict):
        return [f"{where}: not a mapping"]
    for section, body in cfg.items():
        if section == "listeners":
            if not isinstance(body, list) or not body:
                errors.append(f"{where}.listeners: must be a non-empty list")
                continue
            ports = []
            for i, lst in enumerate(body):
                _keys(f"{where}.listeners[{i}]", lst, LISTENER, errors)
                if isinstance(lst, dict) and "port" not in lst:
                    errors.append(f"{where}.listeners[{i}]: port is required")
                elif isinstance(lst, dict):
                    if lst["port"] in ports:
                        errors.append(f"{where}.listeners[{i}]: duplicate port {lst['port']}")
                    ports.append(lst["port"])
        elif section in SCHEMA:
            _keys(f"{where}.{section}", body, SCHEMA[section], errors)
            if section == "metrics" and isinstance(body, dict) and "per_client" in body:
                _keys(f"{where}.metrics.per_client", body["per_client"], PER_CLIENT, errors)
            if section == "metrics" and isinstance(body, dict) and "basic_auth" in body:
                auth = body["basic_auth"]
                _keys(f"{where}.metrics.basic_auth", auth, BASIC_AUTH, errors)
                if isinstance(auth, dict) and ("username" in auth) != ("password_file" in auth):
                    errors.append(f"{where}.metrics.basic_auth: username and password_file go together")
            if section == "metrics" and isinstance(body, dict) and body.get("tls") is not None:
                tls = body["tls"]
                _keys(f"{where}.metrics.tls", tls, TLS, errors)
                if isinstance(tls, dict) and ("cert_file" in tls) != ("key_file" in tls):
                    errors.append(f"{where}.metrics.tls: cert_file and key_file go together")
            if section == "detectors" and isinstance(body, dict):
                for sub, keys in DETECTORS.items():
                    if body.get(sub) is not None:
                        _keys(f"{where}.detectors.{sub}", body[sub], keys, errors)
        else:
            errors.append(f"{where}.{section}: unknown section")
    return errors


def main(paths):
    bad = 0
    for p in paths:
        with open(p) as f:
            errs = check_config(yaml.safe_load(f), p)
        for e in errs:
            print(e)
        bad += len(errs)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
