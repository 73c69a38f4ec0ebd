#!/usr/bin/env python3
"""Live MQTT-over-WebSocket test against a real broker WebSocket listener:
aedes 0.51 (tests/e2e/aedes/broker.js --ws, the `ws` package) on loopback,
real MQTT.js clients (WebSocket transport) and raw WebSocket clients
(ws_client.py), mqttlive capturing on `lo` with `kind: websocket` on that port.

Checks that mqttlive reports what it reports for plain MQTT: connected (client
id, keepalive, protocol), graceful_disconnect, a killed client's FIN, a hung
client (SIGSTOP) expiring at the exact deadline and written within 0.5 s of it,
then aedes's keepalive close; a live client pinging through; WebSocket pings
not counted as MQTT activity (by mqttlive nor by aedes); a CONNECT fragmented
over continuation frames with a ping in between; a Close frame without
DISCONNECT; and the metrics. Usage: test_aedes_websocket.py MQTTLIVE_BINARY"""
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from aedes_lab import (EventTail, cleanup_on_signal, NodeClient, aedes_log, metric, nonzero, note,  # noqa: E402
                       open_states, prerequisites, settled_metrics, start_aedes)
from live_common import Live, free_port, try_call, wait_for  # noqa: E402
from mqtt_client import _varint  # noqa: E402
from ws_client import WsClient  # noqa: E402

BIN = sys.argv[1]
K = 2            # keepalive of the clients that go silent
FACTOR = 1.5


def main():
    t_start = time.time()
    live = Live("mqttlive-aedes-ws-")
    if not prerequisites(live, ["node"]):
        return live.finish()
    tcp_port, ws_port, web_port = free_port(), free_port(), free_port()
    live.start_mqttlive(BIN, (
        "capture:\n  interfaces: [lo]\n  timeout_ms: 20\n"
        "listeners:\n  - port: %d\n    kind: websocket\n"
        "keepalive:\n  close_settle_seconds: 1\n") % ws_port, web_port)
    tail = EventTail(live.events_path)
    clients = []
    cleanup_on_signal(live, clients)

    def client(name, *args):
        c = NodeClient(live, name, ["--ws", "ws://127.0.0.1:%d/mqtt" % ws_port, "--id", name] + list(args))
        clients.append(c)
        return c

    try:
        if not live.check("aedes listens on TCP and WebSocket", start_aedes(live, tcp_port, ws_port=ws_port),
                          aedes_log(live)):
            return live.finish()
        # mqttlive's capture is live once a probe connection is seen (retried: the
        # first one may come before the capture is open).
        def probe():
            p = try_call(lambda: WsClient(ws_port, "probe", 30))
            if p:
                p.disconnect()
            return tail.wait(1, "closed", "probe")
        if not live.check("mqttlive sees a probe WebSocket connection", wait_for(probe, 15, 0.2), tail.find()):
            return live.finish()
        n_probe = len(tail.find("connected", "probe"))

        # A. hung app: an MQTT.js client (K = 2 s) subscribes, then is stopped.
        # B. a live MQTT.js client (K = 2 s) pinging through the whole test.
        # E. raw client (K = 2 s) sending only WebSocket pings.
        hung, alive = client("ws-hung", "--keepalive", str(K)), client("ws-alive", "--keepalive", str(K))
        raw_pings = WsClient(ws_port, "ws-pings", K)
        t_raw_connect = time.time()
        hung.connected()
        alive.connected()
        hung.command("subscribe mqttlive/test")
        hung.wait("recv", cmd="suback")
        hung.stop()
        t_stop = time.time()
        stop_pings = threading.Event()
        pongs = []

        def pinger():
            while not stop_pings.is_set():
                try:
                    raw_pings.ws_ping()
                    pongs.append(time.time())
                except (OSError, RuntimeError):
                    return
                stop_pings.wait(0.5)
        threading.Thread(target=pinger, daemon=True).start()

        # C. clean MQTT 3.1 client: SUBSCRIBE, PUBLISH QoS 1 (acked), DISCONNECT.
        clean = client("ws-clean", "--keepalive", "10", "--v31")
        clean.connected()
        clean.command("subscribe mqttlive/clean")
        clean.wait("recv", cmd="suback")
        clean.command("publish mqttlive/clean 1")
        live.check("C. MQTT.js QoS 1 publish acked by aedes over WebSocket",
                   clean.wait("published", 5) and clean.wait("recv", 5, cmd="publish"), clean.lines)
        # 200 kB PUBLISH both ways: 64-bit WebSocket frame lengths, a frame over many TCP segments.
        clean.command("publish mqttlive/clean 1 200000")
        live.check("C. 200 kB QoS 1 publish acked and delivered back over WebSocket",
                   wait_for(lambda: len(clean.seen("published")) >= 2 and len(clean.seen("recv", cmd="publish")) >= 2,
                            10, 0.02), clean.lines)
        clean.command("end")
        # D. killed client: SIGKILL, the kernel sends a FIN, no Close frame, no DISCONNECT.
        killed = client("ws-killed", "--keepalive", "10")
        killed.connected()
        time.sleep(0.2)
        killed.kill()
        # F. raw client: CONNECT in 3 fragments with a ping in between, then a 300-byte
        # PUBLISH (16-bit frame length), PINGREQ and DISCONNECT, then a Close frame.
        frag = WsClient(ws_port, "ws-fragmented", 10, fragments=3)
        body = b"\x00\x0cmqttlive/big" + b"x" * 300
        frag.send(2, b"\x30" + _varint(len(body)) + body)
        frag.mqtt_ping()
        frag.disconnect()
        # G. raw client: a Close frame without DISCONNECT.
        closer = WsClient(ws_port, "ws-close-only", 10)
        time.sleep(0.1)
        closer.close_frame()

        c = tail.wait(5, "connected", "ws-clean")
        live.check("C. connected: transport websocket, client id, protocol 3.1, keepalive 10 from CONNECT",
                   c and c[0]["transport"] == "websocket" and c[0]["protocol"] == "3.1" and c[0]["keepalive"] == 10
                   and c[0]["keepalive_source"] == "connect" and c[0]["client_real"] is None, c)
        c = tail.wait(5, "closed", "ws-clean")
        live.check("C. closed graceful_disconnect", c and c[0]["reason"] == "graceful_disconnect", c)
        c = tail.wait(5, "closed", "ws-killed")
        live.check("D. killed client: closed client_fin_without_disconnect by the client, no RST",
                   c and c[0]["reason"] == "client_fin_without_disconnect" and c[0]["closed_by"] == "client"
                   and not c[0]["rst"], c)
        c = tail.wait(5, "connected", "ws-fragmented")
        live.check("F. fragmented CONNECT (ping between fragments) decoded: client id, keepalive 10",
                   c and c[0]["keepalive"] == 10 and c[0]["protocol"] == "3.1.1", tail.find(client_id="ws-fragmented"))
        c = tail.wait(5, "closed", "ws-fragmented")
        live.check("F. closed graceful_disconnect", c and c[0]["reason"] == "graceful_disconnect", c)
        c = tail.wait(5, "closed", "ws-close-only")
        live.check("G. Close frame without DISCONNECT: client_fin_without_disconnect by the client",
                   c and c[0]["reason"] == "client_fin_without_disconnect" and c[0]["closed_by"] == "client", c)

        # A. the hung client expires at the exact deadline, then aedes closes it.
        deadline = t_stop + FACTOR * K    # at the latest: its last packet came before the stop
        hung_last = hung.last_send()      # its stdout lines written before SIGSTOP are read by now
        e = tail.wait(max(0, deadline - time.time()) + 3, "keepalive_expired", "ws-hung")
        if live.check("A. hung MQTT.js client: keepalive_expired", e, tail.find(client_id="ws-hung")):
            e = e[0]
            live.check("A. expiry ts is exactly last_activity + %.1f s" % (FACTOR * K),
                       abs(e["ts"] - (e["last_activity"] + FACTOR * K)) < 2e-6, e)
            live.check("A. last_activity is the client's last packet (SUBSCRIBE) as the client logged it",
                       abs(e["last_activity"] - hung_last) < 0.1 and e["last_activity"] <= t_stop,
                       "last_activity - client send = %.3f" % (e["last_activity"] - hung_last))
            lag = e["_arrival"] - e["ts"]
            note("A. keepalive_expired written %.0f ms after its deadline" % (lag * 1000))
            live.check("A. event written within 0.5 s after the deadline (wall clock)", -0.05 < lag < 0.5, lag)
        c = tail.wait(5, "closed", "ws-hung")
        live.check("A. closed broker_close_keepalive by aedes, expired, client_tcp responsive (stopped app)",
                   c and c[0]["reason"] == "broker_close_keepalive" and c[0]["closed_by"] == "broker"
                   and c[0]["expired"] and c[0]["client_tcp"] == "responsive", c)
        if c and e:
            note("A. aedes closed the WebSocket connection %.0f ms after mqttlive's deadline (rst=%s)"
                 % ((c[0]["ts"] - e["ts"]) * 1000, c[0]["rst"]))
            live.check("A. aedes enforces at the deadline (close within 0.5 s after it)",
                       -0.01 <= c[0]["ts"] - e["ts"] < 0.5, c[0]["ts"] - e["ts"])

        # E. WebSocket pings are not MQTT activity, for mqttlive and for aedes.
        e = tail.wait(max(0, t_raw_connect + FACTOR * K - time.time()) + 3, "keepalive_expired", "ws-pings")
        live.check("E. WebSocket pings answered by aedes's ws server", len(pongs) >= 3, len(pongs))
        if live.check("E. keepalive_expired despite WebSocket pings", e, tail.find(client_id="ws-pings")):
            live.check("E. deadline counted from CONNECT, not from the pings",
                       abs(e[0]["last_activity"] - t_raw_connect) < 0.3
                       and abs(e[0]["ts"] - (e[0]["last_activity"] + FACTOR * K)) < 2e-6, e[0])
        c = tail.wait(5, "closed", "ws-pings")
        live.check("E. aedes closes it too: broker_close_keepalive",
                   c and c[0]["reason"] == "broker_close_keepalive" and c[0]["closed_by"] == "broker", c)
        stop_pings.set()

        # B. the live client kept pinging past several deadlines: never expired.
        live.check("B. live MQTT.js client sent PINGREQs over WebSocket",
                   wait_for(lambda: len(alive.seen("send", cmd="pingreq")) >= 2, 3, 0.05),
                   alive.lines)
        live.check("B. live client never expired", not tail.find("keepalive_expired", "ws-alive"),
                   tail.find(client_id="ws-alive"))
        alive.command("end")
        c = tail.wait(5, "closed", "ws-alive")
        live.check("B. closed graceful_disconnect", c and c[0]["reason"] == "graceful_disconnect", c)

        keepalives = {"ws-hung": K, "ws-alive": K, "ws-pings": K, "ws-clean": 10, "ws-killed": 10,
                      "ws-fragmented": 10, "ws-close-only": 10}
        for cid, ka in keepalives.items():
            ev = tail.find("connected", cid)
            live.check("%s: one connected event, transport websocket, keepalive %d, client_real null" % (cid, ka),
                       len(ev) == 1 and ev[0]["transport"] == "websocket" and ev[0]["keepalive"] == ka
                       and ev[0]["client_real"] is None and not ev[0]["midstream"], ev)
        extra = {}
        for ev in tail.find("closed"):
            if ev["client_id"] not in keepalives:   # port checks and probes
                extra[ev["reason"]] = extra.get(ev["reason"], 0) + 1
        m, got, want = settled_metrics(web_port, {
            'mqttlive_connections_closed_total{reason="graceful_disconnect"}': 3,             # C, F, B
            'mqttlive_connections_closed_total{reason="client_fin_without_disconnect"}': 2,   # D, G
            'mqttlive_connections_closed_total{reason="broker_close_keepalive"}': 2,          # A, E
            "mqttlive_keepalive_expirations_total": 2,
            'mqttlive_mqtt_packets_total{direction="client",type="CONNECT"}': 7 + n_probe,
            'mqttlive_mqtt_packets_total{direction="broker",type="CONNACK"}': 7 + n_probe,
        }, extra)
        live.check("metrics: closes by reason, expirations, CONNECT/CONNACK counts", got == want,
                   {k: (got[k], want[k]) for k in want if got[k] != want[k]})
        live.check("metrics: PUBLISH both ways, PUBACK, SUBSCRIBE, PINGREQ counted inside WebSocket",
                   (metric(m, 'mqttlive_mqtt_packets_total{direction="client",type="PUBLISH"}') or 0) >= 3
                   and (metric(m, 'mqttlive_mqtt_packets_total{direction="broker",type="PUBLISH"}') or 0) >= 2
                   and (metric(m, 'mqttlive_mqtt_packets_total{direction="broker",type="PUBACK"}') or 0) >= 2
                   and (metric(m, 'mqttlive_mqtt_packets_total{direction="client",type="SUBSCRIBE"}') or 0) >= 2
                   and (metric(m, 'mqttlive_mqtt_packets_total{direction="client",type="PINGREQ"}') or 0) >= 3,
                   nonzero(m, "mqttlive_mqtt_packets_total"))
        live.check("metrics: no transport, parse or TCP gap errors",
                   not nonzero(m, "mqttlive_transport_errors_total{") and not nonzero(m, "mqttlive_parse_errors_total{")
                   and not nonzero(m, "mqttlive_tcp_gaps_total{"),
                   nonzero(m, "mqttlive_transport_errors_total{") + nonzero(m, "mqttlive_parse_errors_total{")
                   + nonzero(m, "mqttlive_tcp_gaps_total{"))
        live.check("metrics: nothing left open or expired", not open_states(m), open_states(m))
        log = aedes_log(live)
        live.check("aedes saw every client over WebSocket",
                   all("client connected %s from 127.0.0.1:" % n in log for n in
                       ("ws-hung", "ws-alive", "ws-clean", "ws-killed", "ws-pings", "ws-fragmented", "ws-close-only")),
                   log)
    except Exception as ex:  # a client failing is a failed check, with the logs printed
        live.check("no exception", False, repr(ex))
    finally:
        for c in clients:
            c.reap()
        tail.close()
    print("took %.1f s" % (time.time() - t_start))
    return live.finish()


if __name__ == "__main__":
    sys.exit(main())
