#!/usr/bin/env python3
"""Live sidecar test on loopback: a real Mosquitto, real clients, mqttlive
capturing on `lo`, assertions on its event stream and on scraped /metrics
(checked by promtool). Usage: test_live_mosquitto.py MQTTLIVE_BINARY"""
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from live_common import free_port, wait_for  # noqa: E402
from mqtt_client import Client  # noqa: E402

BIN = sys.argv[1]
results = []


def check(name, cond, detail=""):
    results.append((name, bool(cond)))
    print(("ok   " if cond else "FAIL ") + name + ("" if cond else "  -- " + str(detail)), flush=True)


def scrape(port, path="/metrics"):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=5) as r:
        return r.read().decode()


def metric(text, name, labels=""):
    key = name + ("{" + labels + "}" if labels else "")
    for line in text.splitlines():
        if line.startswith(key + " "):
            return float(line.split()[-1])
    return None


def main():
    tmp = tempfile.mkdtemp(prefix="mqttlive-live-")
    broker_port, web_port = free_port(), free_port()
    conf = os.path.join(tmp, "mosquitto.conf")
    with open(conf, "w") as f:
        f.write("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest stderr\n" % broker_port)
    mosq = subprocess.Popen(["mosquitto", "-c", conf], stderr=open(os.path.join(tmp, "mosquitto.log"), "w"))
    cfg = os.path.join(tmp, "mqttlive.yaml")
    with open(cfg, "w") as f:
        f.write("capture:\n  interfaces: [lo]\n  timeout_ms: 20\nlisteners:\n  - port: %d\n"
                "keepalive:\n  no_keepalive_idle_seconds: 3\n  close_settle_seconds: 1\n" % broker_port)
    events_path = os.path.join(tmp, "events.jsonl")
    live = subprocess.Popen([BIN, "--config.file", cfg, "--web.listen-address", "127.0.0.1:%d" % web_port,
                             "--events.output", events_path],
                            stderr=open(os.path.join(tmp, "mqttlive.log"), "w"))

    def events():
        try:
            with open(events_path) as f:
                return [json.loads(l) for l in f if l.strip()]
        except FileNotFoundError:
            return []

    def find(kind, client_port=None, cid=None):
        return [e for e in events() if e["event"] == kind
                and (client_port is None or e["client"].endswith(":%d" % client_port))
                and (cid is None or e["client_id"] == cid)]

    try:
        check("mqttlive serves /healthz", wait_for(lambda: _try(lambda: scrape(web_port, "/healthz")), 10))
        time.sleep(0.5)  # capture is live before the first client connects

        # 1. clean client: graceful_disconnect
        c = Client(broker_port, "clean-1", 10)
        c.ping()
        time.sleep(0.2)
        c.disconnect()
        ok = wait_for(lambda: find("closed", c.local_port), 5)
        check("clean client connected event", find("connected", c.local_port, "clean-1"), events())
        check("clean client closed graceful_disconnect",
              ok and ok[0]["reason"] == "graceful_disconnect", ok)

        # 2. close without DISCONNECT (FIN) and abort (RST)
        f = Client(broker_port, "fin-1", 10)
        f.close_without_disconnect()
        r = Client(broker_port, "rst-1", 10)
        r.abort()
        ok = wait_for(lambda: find("closed", f.local_port), 5)
        check("FIN without DISCONNECT", ok and ok[0]["reason"] == "client_fin_without_disconnect", ok)
        ok = wait_for(lambda: find("closed", r.local_port), 5)
        check("RST without DISCONNECT", ok and ok[0]["reason"] == "client_rst_without_disconnect", ok)

        # 3. silent client: socket open, nothing sent after CONNECT (keepalive 2 s)
        t_connect = time.time()
        s = Client(broker_port, "silent-1", 2)
        exp = wait_for(lambda: find("keepalive_expired", s.local_port), 8)
        check("silent client keepalive_expired", exp, events())
        if exp:
            lag = abs(exp[0]["ts"] - (exp[0]["last_activity"] + 3.0))
            check("expiry ts is the exact deadline", lag < 1e-6, exp[0])
            check("expiry reported near the true deadline", exp[0]["ts"] - t_connect < 3.5, exp[0]["ts"] - t_connect)
        # Gauges follow within half a second of the event.
        half_open = wait_for(lambda: (metric(scrape(web_port), "mqttlive_connections", 'state="expired"') or 0) >= 1,
                             0.6, 0.05)
        check("gauge shows the half-open connection within 0.5 s", half_open)
        # Mosquitto closes it soon after 1.5 x K; the client's kernel still ACKs.
        closed = wait_for(lambda: find("closed", s.local_port), 10)
        check("broker enforced the keepalive", closed and closed[0]["reason"] == "broker_close_keepalive", closed)
        check("silent (hung) client's TCP still responsive",
              closed and closed[0]["client_tcp"] == "responsive", closed)
        s.close_without_disconnect()

        # 4. keepalive 0 client that goes idle: no deadline, idle state after 3 s
        z = Client(broker_port, "zero-1", 0)
        idle = wait_for(lambda: (metric(scrape(web_port), "mqttlive_connections",
                                        'state="no_keepalive_idle"') or 0) >= 1, 8)
        check("keepalive-0 idle client counted", idle)
        listed = wait_for(lambda: any(x["client_id"] == "zero-1" and x["state"] == "no_keepalive_idle"
                                      for x in json.loads(scrape(web_port, "/connections"))["connections"]), 1.5)
        check("/connections lists the idle client", listed, scrape(web_port, "/connections"))
        check("no keepalive_expired for keepalive 0", not find("keepalive_expired", z.local_port))

        # 5. SIGHUP reload keeps tracked connections
        live.send_signal(signal.SIGHUP)
        time.sleep(1.0)
        m = scrape(web_port)
        check("reload succeeded", metric(m, "mqttlive_config_last_reload_successful") == 1.0)
        conns = json.loads(scrape(web_port, "/connections"))
        check("reload kept the tracked connection", any(x["client_id"] == "zero-1" for x in conns["connections"]))
        z.disconnect()

        # 6. metrics are consistent and valid exposition
        m = scrape(web_port)
        check("closed_total by reason exported",
              (metric(m, "mqttlive_connections_closed_total", 'reason="graceful_disconnect"') or 0) >= 1)
        check("packets counted", (metric(m, "mqttlive_capture_packets_total") or 0) > 10)
        check("CONNECT packets counted",
              (metric(m, "mqttlive_mqtt_packets_total", 'direction="client",type="CONNECT"') or 0) >= 5,
              [l for l in m.splitlines() if "CONNECT" in l])
        p = subprocess.run(["promtool", "check", "metrics"], input=m, text=True, capture_output=True)
        check("promtool check metrics passes", p.returncode == 0 and not p.stdout.strip(), p.stdout + p.stderr)
        check("no password in events", "hunter2" not in open(events_path).read())

        # 7. SIGTERM: clean exit 0
        live.send_signal(signal.SIGTERM)
        try:
            rc = live.wait(10)
        except subprocess.TimeoutExpired:
            rc = None
        check("SIGTERM exits 0", rc == 0, rc)
    finally:
        for p in (live, mosq):
            if p.poll() is None:
                p.kill()
                p.wait()
        if any(not ok for _, ok in results):
            for name in ("mqttlive.log", "mosquitto.log", "events.jsonl"):
                print("---- " + name)
                print(open(os.path.join(tmp, name)).read()[-4000:])
    passed = sum(1 for _, ok in results if ok)
    failed = len(results) - passed
    print("%d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 else 1


def _try(fn):
    try:
        return fn()
    except Exception:
        return None


if __name__ == "__main__":
    sys.exit(main())
