#!/usr/bin/env python3
"""HTTPS endpoints (metrics.tls) end to end: mqttlive capturing on `lo` serves
its endpoints over TLS with basic auth, using a CA and certificates made here
with openssl; a real Prometheus scrapes it with tls_config.ca_file and
basic_auth and the target is up. Also: plain HTTP is not served on that port,
a Prometheus job without the CA cannot scrape it, mutual TLS refuses clients
without a certificate, and a key that does not match the certificate stops
mqttlive at start with a clear message and a non-zero exit. The first
instance runs at --log.level debug with per-client metrics hashed, behind a
stand-in broker that a client CONNECTs to with a password: the password never
reaches the log, the events, the scrape, /connections or the state file, and
the raw client id never reaches the log, the scrape or /connections.
Usage: test_https.py MQTTLIVE_BINARY"""
import base64
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from live_common import Live, free_port, try_call, wait_for, wait_port  # noqa: E402
from mqtt_client import Client  # noqa: E402

BIN = sys.argv[1]
PASSWORD = "s3cret-Pa55"
MQTT_PASSWORD = "Mqtt-Pa55word-9z"
CLIENT_ID = "serial-7731@plant.example"


def stand_in_broker(port, stop):
    """Accepts connections, answers each CONNECT with CONNACK 0, then stays silent."""
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(8)
    srv.settimeout(0.2)
    conns = []
    while not stop.is_set():
        try:
            c, _ = srv.accept()
        except socket.timeout:
            continue
        c.recv(4096)
        c.sendall(b"\x20\x02\x00\x00")
        conns.append(c)
    for c in conns:
        c.close()
    srv.close()


def openssl(live, *args):
    r = subprocess.run(["openssl"] + list(args), cwd=live.tmp, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("openssl %s: %s" % (" ".join(args), r.stderr))


def make_pki(live):
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl(live, "req", "-x509", *ec, "-days", "2", "-subj", "/CN=mqttlive-live-ca", "-keyout", "ca.key",
            "-out", "ca.pem")
    for name, ext in (("server", "subjectAltName=IP:127.0.0.1,DNS:localhost"),
                      ("server2", "subjectAltName=IP:127.0.0.1,DNS:localhost"),
                      ("client", "extendedKeyUsage=clientAuth")):
        with open(live.path(name + ".ext"), "w") as f:
            f.write(ext + "\n")
        openssl(live, "req", "-new", *ec, "-subj", "/CN=" + name, "-keyout", name + ".key", "-out", name + ".csr")
        openssl(live, "x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                "-days", "2", "-extfile", name + ".ext", "-out", name + ".pem")
    openssl(live, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-out", "other.key")


def https_get(port, path, auth=True, cert=None, ca="ca.pem", live=None):
    ctx = ssl.create_default_context(cafile=live.path(ca))
    if cert:
        ctx.load_cert_chain(live.path(cert + ".pem"), live.path(cert + ".key"))
    req = urllib.request.Request("https://127.0.0.1:%d%s" % (port, path))
    if auth:
        req.add_header("Authorization", "Basic " + base64.b64encode(("prom:" + PASSWORD).encode()).decode())
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, ""


def peer_cn(port, live):
    ctx = ssl.create_default_context(cafile=live.path("ca.pem"))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            subject = dict(x[0] for x in tls.getpeercert()["subject"])
    return subject.get("commonName")


def plain_http_answer(port):
    """What a plain-HTTP client gets from the port: bytes it received."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    data = b""
    try:
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    except OSError:
        pass
    s.close()
    return data


def prom_query(prom_port, expr):
    url = "http://127.0.0.1:%d/api/v1/query?%s" % (prom_port, urllib.parse.urlencode({"query": expr}))
    with urllib.request.urlopen(url, timeout=5) as r:
        body = json.loads(r.read())
    return body["data"]["result"]


def target_health(prom_port):
    with urllib.request.urlopen("http://127.0.0.1:%d/api/v1/targets" % prom_port, timeout=5) as r:
        body = json.loads(r.read())
    return {t["labels"]["job"]: (t["health"], t.get("lastError", "")) for t in body["data"]["activeTargets"]}


def mqttlive_yaml(live, broker_port, extra_tls=""):
    return ("capture:\n  interfaces: [lo]\n"
            "listeners:\n  - port: %d\n"
            "metrics:\n"
            "  basic_auth:\n    username: prom\n    password_file: %s\n"
            "  tls:\n    cert_file: %s\n    key_file: %s\n%s"
            % (broker_port, live.path("http-password"), live.path("server.pem"), live.path("server.key"), extra_tls))


def main():
    live = Live("mqttlive-https-")
    make_pki(live)
    with open(live.path("http-password"), "w") as f:
        f.write(PASSWORD + "\n")
    os.chmod(live.path("http-password"), 0o600)
    web_port, broker_port = free_port(), free_port()

    stop = threading.Event()
    threading.Thread(target=stand_in_broker, args=(broker_port, stop), daemon=True).start()
    cfg = live.path("mqttlive.yaml")
    with open(cfg, "w") as f:
        f.write(mqttlive_yaml(live, broker_port) +
                "  per_client:\n    enabled: true\n    hash_client_id: true\n"
                "state:\n  file: %s\n" % live.path("state.bin"))
    log_path = live.path("mqttlive.log")
    live.logs.append(log_path)
    live.procs.append(subprocess.Popen(
        [BIN, "--config.file", cfg, "--web.listen-address", "127.0.0.1:%d" % web_port, "--log.level", "debug",
         "--events.output", live.events_path], stderr=open(log_path, "w")))
    live.check("mqttlive listens on the HTTPS port", wait_port(web_port))
    status, body = try_call(lambda: https_get(web_port, "/metrics", live=live)) or (0, "")
    live.check("GET /metrics over HTTPS, server verified against the CA", status == 200 and
               "mqttlive_build_info" in body, (status, body[:200]))
    status, _ = try_call(lambda: https_get(web_port, "/metrics", auth=False, live=live)) or (0, "")
    live.check("basic auth still enforced over HTTPS (401 without credentials)", status == 401, status)
    status, body = try_call(lambda: https_get(web_port, "/healthz", auth=False, live=live)) or (0, "")
    live.check("/healthz open over HTTPS", status == 200 and body == "ok", (status, body))
    answer = try_call(lambda: plain_http_answer(web_port)) or b""
    live.check("plain HTTP is not served on the HTTPS port", b"HTTP/" not in answer and b"mqttlive_" not in answer,
               answer[:100])

    # ---- a real Prometheus scrapes it over HTTPS
    prom = shutil.which("prometheus")
    if not live.check("prometheus is installed (scripts/setup.sh)", prom is not None):
        return live.finish()
    prom_port = free_port()
    target = "127.0.0.1:%d" % web_port
    prom_cfg = live.path("prometheus.yml")
    with open(prom_cfg, "w") as f:
        f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                "scrape_configs:\n"
                "  - job_name: mqttlive\n    scheme: https\n"
                "    tls_config:\n      ca_file: %s\n"
                "    basic_auth:\n      username: prom\n      password_file: %s\n"
                "    static_configs:\n      - targets: ['%s']\n"
                # The same target without the CA: must fail verification, not fall back.
                "  - job_name: untrusted\n    scheme: https\n"
                "    basic_auth:\n      username: prom\n      password_file: %s\n"
                "    static_configs:\n      - targets: ['%s']\n"
                # Plain HTTP against the TLS port: down.
                "  - job_name: plain\n    static_configs:\n      - targets: ['%s']\n"
                % (live.path("ca.pem"), live.path("http-password"), target, live.path("http-password"), target,
                   target))
    live.start("prometheus", [prom, "--config.file=" + prom_cfg, "--storage.tsdb.path=" + live.path("tsdb"),
                              "--web.listen-address=127.0.0.1:%d" % prom_port, "--log.level=warn"])
    live.check("prometheus ready", wait_port(prom_port, 30))

    def up(job):
        r = try_call(lambda: prom_query(prom_port, 'up{job="%s"}' % job))
        return float(r[0]["value"][1]) if r else None

    live.check("Prometheus scrapes mqttlive over HTTPS with tls_config.ca_file: up == 1",
               wait_for(lambda: up("mqttlive") == 1, 30, 0.5), try_call(lambda: target_health(prom_port)))
    build = wait_for(lambda: try_call(lambda: prom_query(prom_port, 'mqttlive_build_info{job="mqttlive"}')), 10, 0.5)
    live.check("mqttlive_build_info stored from the HTTPS scrape", build)
    live.check("a job without the CA cannot scrape it (up == 0)", wait_for(lambda: up("untrusted") == 0, 15, 0.5))
    health = try_call(lambda: target_health(prom_port)) or {}
    live.check("... because the certificate is not trusted",
               "certificate" in health.get("untrusted", ("", ""))[1], health.get("untrusted"))
    live.check("a plain-HTTP job gets nothing from the HTTPS port (up == 0)",
               wait_for(lambda: up("plain") == 0, 15, 0.5), health.get("plain"))

    # ---- a renewed certificate: SIGHUP reloads it for new connections, no restart
    live.check("serving the first certificate", try_call(lambda: peer_cn(web_port, live)) == "server")
    main_proc = live.procs[0]
    shutil.copy(live.path("server2.key"), live.path("server.key"))
    shutil.copy(live.path("server2.pem"), live.path("server.pem"))
    main_proc.send_signal(signal.SIGHUP)
    live.check("after SIGHUP new connections get the renewed certificate",
               wait_for(lambda: try_call(lambda: peer_cn(web_port, live)) == "server2", 10),
               try_call(lambda: peer_cn(web_port, live)))
    live.check("the reload is logged", "certificate and key reloaded" in open(log_path, errors="replace").read())
    live.check("mqttlive still running after the reload", main_proc.poll() is None)
    live.check("Prometheus still scrapes it after the renewal",
               wait_for(lambda: up("mqttlive") == 1, 10, 0.5))

    # ---- secrets and hashed client ids, live at debug level
    time.sleep(0.5)  # the capture is open before the HTTP server starts
    client = try_call(lambda: Client(broker_port, CLIENT_ID, 1, password=MQTT_PASSWORD))
    live.check("client CONNECTs with a password through the stand-in broker", client is not None)
    expired = wait_for(lambda: live.find("keepalive_expired"), 10)
    live.check("mqttlive judged it (keepalive_expired)", expired)
    hashed = wait_for(lambda: "client_id=" in (try_call(lambda: https_get(web_port, "/metrics", live=live)) or
                                               (0, ""))[1], 5)
    scrape = (try_call(lambda: https_get(web_port, "/metrics", live=live)) or (0, ""))[1]
    conns = wait_for(lambda: (lambda b: b if "client_id" in b and '"client_id":null' not in b else None)(
        (try_call(lambda: https_get(web_port, "/connections", live=live)) or (0, ""))[1]), 5) or ""
    live.check("per-client series present, labelled with the hash", hashed and CLIENT_ID not in scrape, scrape[-300:])
    live.check("/connections lists it by hash, not by id", conns and CLIENT_ID not in conns, conns[:300])
    for p in live.procs:
        p.terminate()
        p.wait(10)
    live.procs.clear()
    stop.set()
    log_text = open(log_path, errors="replace").read()
    events_text = open(live.events_path, errors="replace").read()
    state = open(live.path("state.bin"), "rb").read() if os.path.exists(live.path("state.bin")) else b""
    live.check("the debug log was written", "debug" in log_text or "[D]" in log_text or len(log_text) > 0, log_text[:200])
    live.check("events keep the client id (the event contract)", CLIENT_ID in events_text)
    live.check("the raw client id is not in the debug log", CLIENT_ID not in log_text, log_text[-500:])
    live.check("state file written and holds no password", state and MQTT_PASSWORD.encode() not in state, len(state))
    for where, text in (("log", log_text), ("events", events_text), ("scrape", scrape), ("/connections", conns)):
        live.check("the MQTT password is not in the %s" % where, MQTT_PASSWORD not in text)
        live.check("the HTTP password is not in the %s" % where, PASSWORD not in text)

    # ---- mutual TLS: a client certificate signed by the CA is required
    web2 = free_port()
    live.start_mqttlive(BIN, mqttlive_yaml(live, broker_port, "    client_ca_file: %s\n" % live.path("ca.pem")), web2)
    live.check("mqttlive with client_ca_file listens", wait_port(web2))
    status = (try_call(lambda: https_get(web2, "/metrics", live=live)) or (0, ""))[0]
    live.check("mTLS: no client certificate -> not served", status != 200, status)
    status, body = try_call(lambda: https_get(web2, "/metrics", cert="client", live=live)) or (0, "")
    live.check("mTLS: client certificate from the CA -> served", status == 200 and "mqttlive_build_info" in body,
               status)
    for p in live.procs:
        p.terminate()
        p.wait(10)
    live.procs.clear()

    # ---- a key that does not match the certificate: clear start-up error, non-zero exit
    cfg = live.path("bad.yaml")
    with open(cfg, "w") as f:
        f.write(mqttlive_yaml(live, broker_port).replace(live.path("server.key"), live.path("other.key")))
    r = subprocess.run([BIN, "--config.file", cfg, "--web.listen-address", "127.0.0.1:%d" % free_port()],
                       capture_output=True, text=True, timeout=30)
    live.check("mismatched key: non-zero exit", r.returncode != 0, r.returncode)
    live.check("mismatched key: the message names the key file and the mismatch",
               "metrics.tls.key_file '%s' does not match the certificate" % live.path("other.key") in r.stderr,
               r.stderr[-500:])
    return live.finish()


if __name__ == "__main__":
    sys.exit(main())
