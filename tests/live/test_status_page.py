#!/usr/bin/env python3
"""The /status page in headless Chromium against a live mqttlive: a real
Mosquitto on loopback, a half-open (silent, expired) client, keepalive-0 idle
clients (one with a hostile client id), a flapping client id. Asserts on the
DOM Chromium rendered (--dump-dom): the suspects are listed with how long,
sorted by the default column or by ?sort=..., and hostile ids are text.
Usage: test_status_page.py MQTTLIVE_BINARY [SCREENSHOT.png]"""
import html.parser
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from live_common import free_port, wait_for  # noqa: E402
from mqtt_client import Client  # noqa: E402

BIN = sys.argv[1]
SCREENSHOT = sys.argv[2] if len(sys.argv) > 2 else "/tmp/mqttlive-status.png"
# Both a script element and an event handler: with innerHTML the handler
# would run and mark the body.
HOSTILE_ID = "<script>document.title='pwned'</script><img src=x onerror=\"document.body.setAttribute('data-pwned','1')\">"
# mqttlive's deadline is 1.0 x K; Mosquitto closes at 1.5 x K: the client is
# half-open in mqttlive's eyes for about K/2 seconds.
SILENT_KEEPALIVE = 20
results = []


def check(name, cond, detail=""):
    results.append((name, bool(cond)))
    print(("ok   " if cond else "FAIL ") + name + ("" if cond else "  -- " + str(detail)[:3000]), flush=True)


def get(port, path):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=5) as r:
        return r.read().decode()


def _try(fn):
    try:
        return fn()
    except Exception:
        return None


def _varint(n):
    out = bytearray()
    while True:
        b, n = n % 128, n // 128
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _str(s):
    b = s.encode()
    return struct.pack(">H", len(b)) + b


def subscribe(client, topic, packet_id, qos=1):
    body = struct.pack(">H", packet_id) + _str(topic) + bytes([qos])
    client.sock.sendall(bytes([0x82]) + _varint(len(body)) + body)
    ack = client.sock.recv(5)
    return len(ack) == 5 and ack[0] == 0x90


def publish(client, topic, packet_id, qos=1, payload=b"x"):
    body = _str(topic) + struct.pack(">H", packet_id) + payload
    client.sock.sendall(bytes([0x30 | (qos << 1)]) + _varint(len(body)) + body)


def read_publish(client):
    """Reads one PUBLISH (QoS > 0) from the broker; returns its packet id."""
    first = client.sock.recv(1)
    n, mult = 0, 1
    while True:
        b = client.sock.recv(1)[0]
        n += (b & 0x7F) * mult
        mult *= 128
        if not b & 0x80:
            break
    body = b""
    while len(body) < n:
        body += client.sock.recv(n - len(body))
    if not first or first[0] >> 4 != 3:
        return None
    tlen = struct.unpack(">H", body[:2])[0]
    return struct.unpack(">H", body[2 + tlen:4 + tlen])[0]


def metric(text, name, labels=""):
    key = name + ("{" + labels + "}" if labels else "")
    for line in text.splitlines():
        if line.startswith(key + " "):
            return float(line.split()[-1])
    return None


def chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        p = shutil.which(name)
        if p:
            return p
    return None


def chromium_args(profile):
    return [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", "--user-data-dir=" + profile,
            "--virtual-time-budget=5000"]


def dump_dom(url, tmp):
    profile = tempfile.mkdtemp(prefix="chromium-", dir=tmp)
    p = subprocess.run(chromium_args(profile) + ["--dump-dom", url], capture_output=True, text=True, timeout=60)
    return p.stdout, p.stderr


class Dom(html.parser.HTMLParser):
    """Rows of #suspects tbody (cells: class, text, data-value), body attributes, tag counts."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.rows = []
        self.body = {}
        self.tags = {}
        self.headers = {}
        self.updated = ""
        self._in_suspects = self._in_tbody = False
        self._cell = None
        self._th = None
        self._in_updated = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags[tag] = self.tags.get(tag, 0) + 1
        if tag == "body":
            self.body = a
        if tag == "table":
            self._in_suspects = a.get("id") == "suspects"
        if self._in_suspects and tag == "tbody":
            self._in_tbody = True
        if self._in_suspects and tag == "th":
            self._th = a
        if self._in_tbody and tag == "tr":
            self.rows.append({"state": a.get("data-state"), "cells": {}})
        if self._in_tbody and tag == "td":
            cls = [c for c in (a.get("class") or "").split() if c.startswith("c-")]
            self._cell = {"key": cls[0][2:] if cls else "?", "text": "", "value": a.get("data-value")}
        if tag == "span" and a.get("id") == "updated":
            self._in_updated = True

    def handle_endtag(self, tag):
        if tag == "table":
            self._in_suspects = self._in_tbody = False
        if tag == "td" and self._cell is not None:
            self.rows[-1]["cells"][self._cell["key"]] = self._cell
            self._cell = None
        if tag == "th":
            self._th = None
        if tag == "span":
            self._in_updated = False

    def handle_data(self, data):
        if self._cell is not None:
            self._cell["text"] += data
        if self._th is not None:
            self.headers[self._th.get("data-key")] = self._th.get("aria-sort")
        if self._in_updated:
            self.updated += data


def parse(dom):
    d = Dom()
    d.feed(dom)
    return d


def ids(d):
    return [r["cells"]["client_id"]["value"] for r in d.rows]


def values(d, key):
    out = []
    for r in d.rows:
        v = r["cells"][key]["value"]
        out.append(None if v is None else (float(v) if key in ("keepalive", "silent_for", "suspect_for") else v))
    return out


def main():
    if chromium() is None:
        print("FAIL chromium not installed (scripts/setup.sh installs the Debian package)")
        return 1
    tmp = tempfile.mkdtemp(prefix="mqttlive-status-")
    broker_port, web_port = free_port(), free_port()
    conf = os.path.join(tmp, "mosquitto.conf")
    with open(conf, "w") as f:
        f.write("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest stderr\n" % broker_port)
    mosq = subprocess.Popen(["mosquitto", "-c", conf], stderr=open(os.path.join(tmp, "mosquitto.log"), "w"))
    cfg = os.path.join(tmp, "mqttlive.yaml")
    with open(cfg, "w") as f:
        f.write("capture:\n  interfaces: [lo]\n  timeout_ms: 20\nlisteners:\n  - port: %d\n"
                "keepalive:\n  factor: 1.0\n  no_keepalive_idle_seconds: 2\n  close_settle_seconds: 1\n"
                % broker_port)
    live = subprocess.Popen([BIN, "--config.file", cfg, "--web.listen-address", "127.0.0.1:%d" % web_port,
                             "--events.output", os.path.join(tmp, "events.jsonl")],
                            stderr=open(os.path.join(tmp, "mqttlive.log"), "w"))
    base = "http://127.0.0.1:%d" % web_port
    clients = []
    try:
        check("mqttlive serves /healthz", wait_for(lambda: _try(lambda: get(web_port, "/healthz")), 10))
        time.sleep(0.5)  # capture is live before the first client connects

        # Suspects: keepalive-0 idle clients (one hostile), a flapping id, a silent one.
        clients.append(Client(broker_port, "idle-oldest", 0))
        time.sleep(0.3)
        clients.append(Client(broker_port, HOSTILE_ID, 0))
        time.sleep(0.3)
        clients.append(Client(broker_port, "Idle-upper", 0))
        for _ in range(6):
            Client(broker_port, "flappy-1", 60).disconnect()
            time.sleep(0.05)
        t_silent = time.time()
        clients.append(Client(broker_port, "silent-expired", SILENT_KEEPALIVE))
        healthy = Client(broker_port, "healthy", 60)  # active: not a suspect
        clients.append(healthy)

        # Round trips while the silent client runs towards its deadline:
        # SUBSCRIBE -> SUBACK, client PUBLISH q1 -> PUBACK, broker PUBLISH q1
        # -> the subscriber's PUBACK, and a subscriber that never acks (in flight).
        lazy = Client(broker_port, "lazy-sub", 60)
        clients.append(lazy)
        check("SUBSCRIBE acknowledged", subscribe(healthy, "rt/#", 1) and subscribe(lazy, "rt/#", 1))
        publisher = Client(broker_port, "publisher", 60)
        clients.append(publisher)
        publish(publisher, "rt/a", 7)
        check("broker PUBACKs the publisher", publisher.sock.recv(4) == b"\x40\x02\x00\x07")
        pid = read_publish(healthy)
        healthy.sock.sendall(b"\x40\x02" + struct.pack(">H", pid))
        read_publish(lazy)  # and never acknowledged

        def rt_metrics():
            m = _try(lambda: get(web_port, "/metrics")) or ""
            got = (metric(m, "mqttlive_subscribe_ack_seconds_count"),
                   metric(m, "mqttlive_publish_ack_seconds_count", 'direction="client",qos="1"'),
                   metric(m, "mqttlive_publish_ack_seconds_count", 'direction="broker",qos="1"'),
                   metric(m, "mqttlive_inflight_messages", 'direction="broker"'))
            return got if got == (2.0, 1.0, 1.0, 1.0) else None
        check("round trips and the unacknowledged message in /metrics", wait_for(rt_metrics, 3),
              _try(lambda: [l for l in get(web_port, "/metrics").splitlines()
                            if "_ack_seconds_count" in l or "inflight" in l]))

        def summary_when(pred):
            s = _try(lambda: json.loads(get(web_port, "/api/summary")))
            return s if s and s.get("now") is not None and pred(s) else None
        summary = wait_for(lambda: summary_when(lambda s: s["flapping_clients"] >= 1), 5)
        check("/api/summary reports the flapping id",
              summary and any(f["client_id"] == "flappy-1" and f["connects"] == 6 and f["flapping"]
                              for f in summary["top_flapping"]), summary)
        summary = wait_for(lambda: summary_when(lambda s: s["connections"]["no_keepalive_idle"] >= 3), 5)
        check("/api/summary counts open connections by state",
              summary and summary["connections"]["no_keepalive_idle"] == 3 and summary["open"] == 7, summary)
        check("/api/summary latency quantiles and in-flight count",
              summary and summary["latency"]["subscribe_ack"]["count"] == 2
              and 0 < summary["latency"]["subscribe_ack"]["p50"] < 1 and summary["inflight"]["broker"] == 1, summary)

        def expired_listed():
            c = _try(lambda: json.loads(get(web_port, "/connections")))
            return c if c and any(x["client_id"] == "silent-expired" and x["state"] == "expired"
                                  for x in c["connections"]) else None
        conns = wait_for(expired_listed, SILENT_KEEPALIVE + 5)
        check("silent client listed as expired", conns, get(web_port, "/connections"))
        t_expired = time.time() - t_silent

        # 1. Default view: every suspect, longest suspect first.
        dom, err = dump_dom(base + "/status", tmp)
        d = parse(dom)
        got = ids(d)
        check("page loaded its data (script ran, fetches answered)",
              d.body.get("data-loaded") == "1" and "updated" in d.updated, (d.body, d.updated, err[-2000:]))
        for cid in ("idle-oldest", "Idle-upper", "flappy-1", "silent-expired", HOSTILE_ID):
            check("suspect table lists %r" % cid[:20], cid in got, got)
        check("active clients are not suspects", not {"healthy", "lazy-sub", "publisher"} & set(got), got)
        states = {r["cells"]["client_id"]["value"]: r["state"] for r in d.rows}
        check("states: expired, idle, flapping",
              states.get("silent-expired") == "expired" and states.get("idle-oldest") == "no_keepalive_idle"
              and states.get("flappy-1") == "flapping", states)
        suspect_for = values(d, "suspect_for")
        check("default sort: suspect_for, longest first",
              d.body.get("data-sort") == "-suspect_for" and suspect_for == sorted(suspect_for, reverse=True)
              and d.headers.get("suspect_for") == "descending", list(zip(got, suspect_for)))
        check("idle clients in the order they went idle",
              got.index("idle-oldest") < got.index(HOSTILE_ID) < got.index("Idle-upper"), got)
        texts = {r["cells"]["client_id"]["value"]: r["cells"] for r in d.rows}
        silent = texts.get("silent-expired", {})
        check("how long: silent for / suspect for rendered as durations",
              silent and silent["silent_for"]["text"].endswith(" s") and silent["suspect_for"]["text"].endswith(" s"),
              silent)
        check("half-open client still open at render time (Mosquitto closes at 1.5 x K)",
              expired_listed() is not None, "took %.1f s to expire" % t_expired)

        # 2. Hostile client id: shown as text, nothing injected, nothing ran.
        hostile = texts.get(HOSTILE_ID, {}).get("client_id", {})
        check("hostile client id rendered verbatim as text", hostile.get("text") == HOSTILE_ID, hostile)
        check("no element injected from the client id", d.tags.get("img", 0) == 0 and d.tags.get("script", 0) == 1,
              d.tags)
        check("injected handler did not run", "data-pwned" not in d.body and "pwned" not in dom.split("<title>")[1][:40],
              d.body)

        # 3. ?sort=client_id (what a header click sets): A-Z by client id.
        dom, _ = dump_dom(base + "/status?sort=client_id", tmp)
        d = parse(dom)
        got = ids(d)
        check("?sort=client_id honoured", d.body.get("data-sort") == "client_id"
              and d.headers.get("client_id") == "ascending", d.body)
        check("rows in client id order", got == sorted(got) and len(got) >= 5, got)
        dom, _ = dump_dom(base + "/status?sort=-client_id", tmp)
        got = ids(parse(dom))
        check("?sort=-client_id descending", got == sorted(got, reverse=True) and len(got) >= 5, got)

        # 4. A screenshot for a human look.
        profile = tempfile.mkdtemp(prefix="chromium-", dir=tmp)
        p = subprocess.run(chromium_args(profile) + ["--hide-scrollbars", "--window-size=1280,900",
                                                     "--screenshot=" + SCREENSHOT, base + "/status"],
                           capture_output=True, text=True, timeout=60)
        check("screenshot written", os.path.exists(SCREENSHOT) and os.path.getsize(SCREENSHOT) > 10000,
              p.stderr[-1000:])
        print("screenshot: " + SCREENSHOT)
    finally:
        for c in clients:
            _try(c.close_without_disconnect)
        for p in (live, mosq):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        if any(not ok for _, ok in results):
            for name in ("mqttlive.log", "mosquitto.log", "events.jsonl"):
                print("---- " + name)
                print(_try(lambda: open(os.path.join(tmp, name)).read()[-4000:]))
        shutil.rmtree(tmp, ignore_errors=True)
    passed = sum(1 for _, ok in results if ok)
    failed = len(results) - passed
    print("%d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
