#!/usr/bin/env python3
"""Live TLS listener test on loopback: a real Mosquitto with a TLS listener
(certificate made here with openssl), Python ssl clients, mqttlive capturing
on `lo` with `kind: tls`. MQTT inside TLS cannot be read: mqttlive follows the
TLS record headers, so every verdict here is an inference from record timing.
Usage: test_tls.py MQTTLIVE_BINARY"""
import os
import socket
import ssl
import struct
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from live_common import Live, free_port, try_call, wait_for, wait_port  # noqa: E402
from mqtt_client import connect_packet  # noqa: E402

BIN = sys.argv[1]


def recv_exact(sock, n):
    out = b""
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            raise RuntimeError("connection closed after %r" % out)
        out += chunk
    return out


class TlsClient:
    """Raw MQTT 3.1.1 over TLS: connects and then behaves as told."""

    def __init__(self, port, client_id, keepalive):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE  # the test's own self-signed certificate
        raw = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.local_port = raw.getsockname()[1]
        self.sock = ctx.wrap_socket(raw, server_hostname="localhost")
        self.version = self.sock.version()
        self.sock.sendall(connect_packet(client_id, keepalive))
        ack = recv_exact(self.sock, 4)
        if ack[0] != 0x20:
            raise RuntimeError("no CONNACK: %r" % ack)

    def ping(self):
        self.sock.sendall(b"\xc0\x00")
        if recv_exact(self.sock, 2) != b"\xd0\x00":
            raise RuntimeError("no PINGRESP")

    def disconnect(self):
        # DISCONNECT, then TLS close_notify, then FIN.
        self.sock.sendall(b"\xe0\x00")
        try:
            self.sock.unwrap().close()
        except (OSError, ssl.SSLError, ValueError):
            self.sock.close()

    def close_abruptly(self):
        # No DISCONNECT and no close_notify: Python's close() sends neither.
        self.sock.close()


def main():
    live = Live("mqttlive-tls-")
    inferred_port, configured_port, web_port = free_port(), free_port(), free_port()
    cert, key = live.path("cert.pem"), live.path("key.pem")
    r = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                        "-days", "1", "-subj", "/CN=localhost"], capture_output=True, text=True)
    if r.returncode != 0:
        print("openssl failed: " + r.stderr)
        return 1
    # Mosquitto started as root drops to user "mosquitto": it must be able to read them.
    os.chmod(live.tmp, 0o755)
    for p in (cert, key):
        os.chmod(p, 0o644)
    conf = live.path("mosquitto.conf")
    with open(conf, "w") as f:
        for port in (inferred_port, configured_port):
            f.write("listener %d 127.0.0.1\ncertfile %s\nkeyfile %s\n" % (port, cert, key))
        f.write("allow_anonymous true\npersistence false\nlog_dest stderr\n")
    live.start("mosquitto", ["mosquitto", "-c", conf])
    live.start_mqttlive(BIN, (
        "capture:\n  interfaces: [lo]\n  timeout_ms: 20\n"
        "listeners:\n"
        "  - port: %d\n    kind: tls\n"                          # keepalive learned from the record cadence
        "  - port: %d\n    kind: tls\n    keepalive_seconds: 2\n"  # keepalive from the config
        "keepalive:\n  close_settle_seconds: 1\n") % (inferred_port, configured_port), web_port)
    try:
        if not live.check("mosquitto TLS listener up", wait_port(inferred_port) and wait_port(configured_port)):
            return live.finish()
        live.check("mqttlive serves /healthz", wait_for(lambda: try_call(lambda: urllib.request.urlopen(
            "http://127.0.0.1:%d/healthz" % web_port, timeout=2).read()), 10))
        time.sleep(0.5)  # capture is live before the first client connects

        # 1. configured keepalive (2 s): a client that goes silent right after CONNECT.
        q = TlsClient(configured_port, "tls-configured", 2)
        print("TLS version: " + q.version, flush=True)

        # 2. keepalive inferred: PINGREQ every 2 s (encrypted: small records), then silence.
        c = TlsClient(inferred_port, "tls-pinger", 2)
        for _ in range(4):
            time.sleep(2.0)
            c.ping()
        t_last = time.time()

        conn = live.find("connected", q.local_port)
        live.check("configured: connected on the TLS handshake", conn, live.events())
        if conn:
            e = conn[0]
            live.check("configured: transport tls, client_id null",
                       e["transport"] == "tls" and e["client_id"] is None, e)
            live.check("configured: keepalive 2 from the config",
                       e["keepalive"] == 2 and e["keepalive_source"] == "configured", e)
        exp = live.wait_event("keepalive_expired", q.local_port, 5)
        live.check("configured: keepalive_expired", exp and exp[0]["transport"] == "tls", live.events())
        closed = live.wait_event("closed", q.local_port, 10)
        live.check("configured: broker enforced the keepalive",
                   closed and closed[0]["reason"] == "broker_close_keepalive", closed)

        conn = live.find("connected", c.local_port)
        live.check("inferred: connected, transport tls, keepalive not known yet",
                   conn and conn[0]["transport"] == "tls" and conn[0]["keepalive"] is None
                   and conn[0]["client_id"] is None, conn or live.events())
        learned = live.wait_event("keepalive_learned", c.local_port, 2)
        live.check("inferred: keepalive learned from the ping cadence",
                   learned and learned[0]["keepalive"] == 2 and learned[0]["keepalive_source"] == "inferred"
                   and learned[0]["transport"] == "tls", learned or live.events())
        exp = live.wait_event("keepalive_expired", c.local_port, 6)
        live.check("inferred: keepalive_expired after the client went silent", exp, live.events())
        if exp:
            live.check("inferred: expiry at last record + 1.5 x 2 s",
                       abs(exp[0]["ts"] - (exp[0]["last_activity"] + 3.0)) < 1e-6
                       and abs(exp[0]["last_activity"] - t_last) < 0.5, exp[0])
        closed = live.wait_event("closed", c.local_port, 10)
        live.check("inferred: broker_close_keepalive",
                   closed and closed[0]["reason"] == "broker_close_keepalive"
                   and closed[0]["keepalive_source"] == "inferred", closed)
        q.close_abruptly()
        c.close_abruptly()

        # 3. abrupt close: FIN without DISCONNECT or close_notify.
        a = TlsClient(inferred_port, "tls-abrupt", 30)
        time.sleep(1.0)  # well past the close-intent window after CONNECT
        a.close_abruptly()
        closed = live.wait_event("closed", a.local_port, 5)
        live.check("abrupt: client_fin_without_disconnect",
                   closed and closed[0]["reason"] == "client_fin_without_disconnect"
                   and closed[0]["transport"] == "tls", closed or live.events())

        # 4. clean close: DISCONNECT + close_notify right before the FIN.
        g = TlsClient(inferred_port, "tls-clean", 30)
        time.sleep(1.0)
        g.disconnect()
        closed = live.wait_event("closed", g.local_port, 5)
        live.check("clean: graceful_disconnect", closed and closed[0]["reason"] == "graceful_disconnect",
                   closed or live.events())

        m = try_call(lambda: urllib.request.urlopen("http://127.0.0.1:%d/metrics" % web_port, timeout=5)
                     .read().decode()) or ""
        live.check("no TLS record errors counted",
                   not [l for l in m.splitlines()
                        if l.startswith("mqttlive_transport_errors_total{") and not l.endswith(" 0")],
                   [l for l in m.splitlines() if l.startswith("mqttlive_transport_errors_total")])
    except Exception as e:  # a client failing is a failed check, with the logs printed
        live.check("no exception", False, repr(e))
    return live.finish()


if __name__ == "__main__":
    sys.exit(main())
