#!/usr/bin/env python3
"""Live MQTT-over-WebSocket test on loopback: raw WebSocket clients (stdlib
socket, hand-built upgrade, masked frames) -> WebSocket listener -> a real
Mosquitto, mqttlive capturing on `lo` with `kind: websocket`.

Debian's Mosquitto is built without libwebsockets (`protocol websockets` fails
with "Unable to start any listening sockets"), so the WebSocket listener is
ws_proxy.py, a small stdlib asyncio proxy in front of Mosquitto's TCP
listener. If the local Mosquitto does support websockets, it is used directly.
Kept beside test_aedes_websocket.py (a real WebSocket listener, aedes + ws) for
what that one cannot show: a broker that sends a Close frame (1001) before its
FIN when it closes a silent client, and Mosquitto as the broker.
Usage: test_websocket.py MQTTLIVE_BINARY"""
import os
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from live_common import Live, free_port, try_call, wait_for, wait_port  # noqa: E402
from ws_client import WsClient  # noqa: E402

BIN = sys.argv[1]
HERE = os.path.dirname(os.path.abspath(__file__))


def mosquitto_has_websockets(live):
    port = free_port()
    conf = live.path("probe.conf")
    with open(conf, "w") as f:
        f.write("listener %d 127.0.0.1\nprotocol websockets\nallow_anonymous true\nlog_dest stderr\n" % port)
    p = subprocess.Popen(["mosquitto", "-c", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    up = wait_port(port, 2)
    p.terminate()
    p.wait()
    return up


def main():
    live = Live("mqttlive-ws-")
    ws_port, web_port = free_port(), free_port()
    native = mosquitto_has_websockets(live)
    conf = live.path("mosquitto.conf")
    with open(conf, "w") as f:
        if native:
            f.write("listener %d 127.0.0.1\nprotocol websockets\n" % ws_port)
        else:
            tcp_port = free_port()
            f.write("listener %d 127.0.0.1\n" % tcp_port)
        f.write("allow_anonymous true\npersistence false\nlog_dest stderr\n")
    live.start("mosquitto", ["mosquitto", "-c", conf])
    if native:
        print("Mosquitto serves WebSocket itself", flush=True)
    else:
        print("Mosquitto lacks websockets: using ws_proxy.py in front of its TCP listener", flush=True)
        wait_port(tcp_port)
        live.start("ws_proxy", [sys.executable, os.path.join(HERE, "ws_proxy.py"), str(ws_port), str(tcp_port)])
    live.start_mqttlive(BIN, (
        "capture:\n  interfaces: [lo]\n  timeout_ms: 20\n"
        "listeners:\n  - port: %d\n    kind: websocket\n"
        "keepalive:\n  close_settle_seconds: 1\n") % ws_port, web_port)
    try:
        if not live.check("WebSocket listener up", wait_port(ws_port)):
            return live.finish()
        live.check("mqttlive serves /healthz", wait_for(lambda: try_call(lambda: urllib.request.urlopen(
            "http://127.0.0.1:%d/healthz" % web_port, timeout=2).read()), 10))
        time.sleep(0.5)  # capture is live before the first client connects

        # 1. CONNECT (keepalive 2 s), then only WebSocket pings: they are not MQTT activity.
        s = WsClient(ws_port, "ws-silent", 2)
        t_connect = time.time()
        pongs = 0
        while time.time() - t_connect < 2.8:
            time.sleep(0.5)
            try:
                s.ws_ping()
                pongs += 1
            except (OSError, RuntimeError):
                break
        live.check("WebSocket pings answered", pongs >= 3, pongs)
        conn = live.find("connected", s.local_port)
        live.check("connected event, transport websocket, client id decoded",
                   conn and conn[0]["transport"] == "websocket" and conn[0]["client_id"] == "ws-silent"
                   and conn[0]["keepalive"] == 2, conn or live.events())
        exp = live.wait_event("keepalive_expired", s.local_port, 4)
        live.check("keepalive_expired despite WebSocket pings", exp and exp[0]["transport"] == "websocket",
                   live.events())
        if exp:
            live.check("expiry ts is the exact deadline after CONNECT",
                       abs(exp[0]["ts"] - (exp[0]["last_activity"] + 3.0)) < 1e-6
                       and abs(exp[0]["last_activity"] - t_connect) < 0.5, exp[0])
        closed = live.wait_event("closed", s.local_port, 10)
        live.check("broker_close_keepalive", closed and closed[0]["reason"] == "broker_close_keepalive"
                   and closed[0]["closed_by"] == "broker", closed or live.events())
        try:
            s.sock.close()
        except OSError:
            pass

        # 2. clean: PINGREQ, DISCONNECT, Close frame.
        c = WsClient(ws_port, "ws-clean", 10)
        c.mqtt_ping()
        time.sleep(0.2)
        c.disconnect()
        closed = live.wait_event("closed", c.local_port, 5)
        live.check("graceful_disconnect", closed and closed[0]["reason"] == "graceful_disconnect"
                   and closed[0]["transport"] == "websocket", closed or live.events())

        # 3. Close frame without DISCONNECT: the client's close, judged at the Close frame.
        x = WsClient(ws_port, "ws-close-only", 10)
        time.sleep(0.2)
        x.close_frame()
        closed = live.wait_event("closed", x.local_port, 5)
        live.check("Close frame without DISCONNECT: client_fin_without_disconnect",
                   closed and closed[0]["reason"] == "client_fin_without_disconnect"
                   and closed[0]["closed_by"] == "client", closed or live.events())

        m = try_call(lambda: urllib.request.urlopen("http://127.0.0.1:%d/metrics" % web_port, timeout=5)
                     .read().decode()) or ""

        def metric(key):
            for line in m.splitlines():
                if line.startswith(key + " "):
                    return float(line.split()[-1])
            return None
        live.check("MQTT packets inside WebSocket counted",
                   (metric('mqttlive_mqtt_packets_total{direction="client",type="CONNECT"}') or 0) >= 3
                   and (metric('mqttlive_mqtt_packets_total{direction="client",type="PINGREQ"}') or 0) >= 1,
                   [l for l in m.splitlines() if "mqtt_packets_total" in l and not l.endswith(" 0")])
        live.check("no WebSocket errors counted",
                   not [l for l in m.splitlines()
                        if l.startswith("mqttlive_transport_errors_total{") and not l.endswith(" 0")],
                   [l for l in m.splitlines() if l.startswith("mqttlive_transport_errors_total")])
    except Exception as e:  # a client failing is a failed check, with the logs printed
        live.check("no exception", False, repr(e))
    return live.finish()


if __name__ == "__main__":
    sys.exit(main())
