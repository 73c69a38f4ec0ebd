#!/usr/bin/env python3
"""Live PROXY protocol test behind a real HAProxy: MQTT.js clients connect from
their own addresses (127.0.0.2, 127.0.0.3 and ::1) to a private HAProxy
(tests own config, foreground, never the system service) whose backends send
`send-proxy-v2` and `send-proxy` (v1) headers to aedes's PROXY listener
(broker.js --proxy-port, aedes-protocol-decoder). mqttlive captures the
HAProxy -> aedes leg on `lo` with `proxy_protocol: true` and must report the
real client address as `client_real` on every event (v1 and v2, IPv4 and
IPv6), while `client` is HAProxy's address, plus the liveness verdicts through
the proxy: connected, graceful_disconnect, a killed client's FIN, and a hung
client (SIGSTOP) expiring at the exact deadline, then aedes's keepalive close.
Usage: test_aedes_proxy.py MQTTLIVE_BINARY"""
import os
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from aedes_lab import (EventTail, cleanup_on_signal, NodeClient, aedes_log, metric, nonzero, note,  # noqa: E402
                       open_states, prerequisites, settled_metrics, start_aedes)
from live_common import Live, free_port, wait_for, wait_port  # noqa: E402

BIN = sys.argv[1]
K = 2
FACTOR = 1.5


def has_ipv6_loopback():
    try:
        s = socket.socket(socket.AF_INET6)
        s.bind(("::1", 0))
        s.close()
        return True
    except OSError:
        return False


def haproxy_config(fe_v2, fe_v1, fe_v2_6, fe_v1_6, fe_tlv, aedes_proxy_port, ipv6):
    six = lambda port: ("    bind [::1]:%d\n" % port) if ipv6 else ""  # noqa: E731
    return ("global\n    maxconn 200\n\n"
            "defaults\n    mode tcp\n    timeout connect 5s\n    timeout client 60s\n    timeout server 60s\n\n"
            "frontend fe_v2\n    bind 127.0.0.1:%d\n%s    default_backend be_v2\n\n"
            "backend be_v2\n    server aedes 127.0.0.1:%d send-proxy-v2\n\n"
            "frontend fe_v1\n    bind 127.0.0.1:%d\n%s    default_backend be_v1\n\n"
            "backend be_v1\n    server aedes 127.0.0.1:%d send-proxy\n\n"
            # v2 with TLVs after the addresses (CRC32C, unique id), and health checks that send
            # a v2 LOCAL header (with a CRC32C TLV) every 500 ms, as HAProxy does in front of
            # a PROXY-protocol broker.
            "frontend fe_tlv\n    bind 127.0.0.1:%d\n    unique-id-format %%{+X}o%%ci:%%cp_%%fi:%%fp_%%Ts_%%rt:%%pid\n"
            "    default_backend be_tlv\n\n"
            "backend be_tlv\n    server aedes 127.0.0.1:%d send-proxy-v2 proxy-v2-options crc32c,unique-id"
            " check check-send-proxy inter 500ms\n"
            % (fe_v2, six(fe_v2_6), aedes_proxy_port, fe_v1, six(fe_v1_6), aedes_proxy_port, fe_tlv,
               aedes_proxy_port))


def main():
    t_start = time.time()
    live = Live("mqttlive-aedes-proxy-")
    if not prerequisites(live, ["node", "haproxy"]):
        return live.finish()
    ipv6 = has_ipv6_loopback()
    tcp_port, proxy_port, web_port = free_port(), free_port(), free_port()
    fe_v2, fe_v1, fe_tlv = free_port(), free_port(), free_port()
    fe_v2_6, fe_v1_6 = (free_port(), free_port()) if ipv6 else (None, None)
    cfg = live.path("haproxy.cfg")
    with open(cfg, "w") as f:
        f.write(haproxy_config(fe_v2, fe_v1, fe_v2_6, fe_v1_6, fe_tlv, proxy_port, ipv6))
    live.logs.append(cfg)
    live.start_mqttlive(BIN, (
        "capture:\n  interfaces: [lo]\n  timeout_ms: 20\n"
        "listeners:\n  - port: %d\n    kind: mqtt\n    proxy_protocol: true\n"
        "keepalive:\n  close_settle_seconds: 1\n") % proxy_port, web_port)
    tail = EventTail(live.events_path)
    clients = []
    cleanup_on_signal(live, clients)

    def client(name, frontend, source, *args):
        host = "[::1]" if ":" in source else "127.0.0.1"
        c = NodeClient(live, name, ["--tcp", "%s:%d" % (host, frontend), "--bind", source, "--id", name] + list(args))
        clients.append(c)
        return c

    try:
        chk = subprocess.run(["haproxy", "-c", "-f", cfg], capture_output=True, text=True)
        if not live.check("haproxy accepts its config", chk.returncode == 0, chk.stdout + chk.stderr):
            return live.finish()
        if not live.check("aedes listens (plain and PROXY listener)", start_aedes(live, tcp_port, proxy_port=proxy_port),
                          aedes_log(live)):
            return live.finish()
        # -db: foreground, no daemon: a private process the test owns and ends.
        t_haproxy = time.time()
        hp = live.start("haproxy", ["haproxy", "-db", "-f", cfg])
        if not live.check("haproxy listens on its frontends", all(wait_port(p, 10) for p in (fe_v2, fe_v1, fe_tlv)),
                          open(live.path("haproxy.log")).read()):
            return live.finish()

        # Capture is live once a probe through the v2 frontend shows up (retried).
        probes = []

        def probe():
            p = client("probe-%d" % len(probes), fe_v2, "127.0.0.2", "--keepalive", "30")
            probes.append(p)
            if p.wait("connected", 5):
                p.command("end")
            return tail.wait(1, "closed", p.name)
        if not live.check("mqttlive sees a probe connection through HAProxy", wait_for(probe, 20, 0.2), tail.find()):
            return live.finish()
        n_probe = len(tail.find("connected"))

        cases = {}   # client id -> (PROXY version, source address, NodeClient)
        for v, fe, src in (("v2", fe_v2, "127.0.0.2"), ("v1", fe_v1, "127.0.0.3")):
            # hung app (K = 2 s), stopped once subscribed
            cases["px-%s-hung" % v] = (v, src, client("px-%s-hung" % v, fe, src, "--keepalive", str(K)))
        for v, fe, src in (("v2", fe_v2, "127.0.0.2"), ("v1", fe_v1, "127.0.0.3")):
            cases["px-%s-clean" % v] = (v, src, client("px-%s-clean" % v, fe, src, "--keepalive", "10"))
            cases["px-%s-killed" % v] = (v, src, client("px-%s-killed" % v, fe, src, "--keepalive", "10"))
        cases["px-tlv-clean"] = ("v2", "127.0.0.4", client("px-tlv-clean", fe_tlv, "127.0.0.4", "--keepalive", "10"))
        cases["px-tlv-killed"] = ("v2", "127.0.0.4", client("px-tlv-killed", fe_tlv, "127.0.0.4", "--keepalive", "10"))
        if ipv6:
            for v, fe in (("v2", fe_v2_6), ("v1", fe_v1_6)):
                cases["px-%s-ipv6" % v] = (v, "::1", client("px-%s-ipv6" % v, fe, "::1", "--keepalive", "10"))
        else:
            note("no ::1 on this host: the IPv6 PROXY cases are not run")
        for cid, (v, src, c) in cases.items():
            c.connected()
        t_stop = {}
        for v in ("v2", "v1"):
            h = cases["px-%s-hung" % v][2]
            h.command("subscribe mqttlive/%s" % v)
        for v in ("v2", "v1"):
            h = cases["px-%s-hung" % v][2]
            if not h.wait("recv", 5, cmd="suback"):
                raise RuntimeError("no SUBACK for %s" % h.name)
            h.stop()
            t_stop[v] = time.time()
        for cid, (v, src, c) in cases.items():
            if cid.endswith("clean") or cid.endswith("ipv6"):
                c.command("publish mqttlive/%s 1" % v)
        for cid, (v, src, c) in cases.items():
            if cid.endswith("clean") or cid.endswith("ipv6"):
                live.check("%s: QoS 1 publish through HAProxy acked by aedes" % cid, c.wait("published", 5), c.lines)
                c.command("end")
            elif cid.endswith("killed"):
                c.kill()

        # Every connection: connected, with HAProxy as `client` and the real source as `client_real`.
        log = aedes_log(live)
        for cid, (v, src, c) in cases.items():
            local = c.seen("connected")[0]["local"]                 # e.g. 127.0.0.2:41234 or ::1:41234
            host, port = local.rsplit(":", 1)
            real = ("[%s]:%s" % (host, port)) if ":" in host else local
            e = tail.wait(5, "connected", cid)
            live.check("%s (%s from %s): connected, client_real %s, client = HAProxy's address" % (cid, v, src, real),
                       e and e[0]["client_real"] == real and e[0]["client"].startswith("127.0.0.1:")
                       and e[0]["client"] != real and e[0]["transport"] == "tcp" and e[0]["protocol"] == "3.1.1"
                       and e[0]["keepalive"] == (K if cid.endswith("hung") else 10), e)
            live.check("%s: aedes (aedes-protocol-decoder) decoded the same address from PROXY %s" % (cid, v),
                       "client connected %s from %s:%s (PROXY %s)" % (cid, host, port, v) in log,
                       [l for l in log.splitlines() if cid in l])

        for v in ("v2", "v1", "tlv"):
            for kind, reason, by in (("clean", "graceful_disconnect", None),
                                     ("killed", "client_fin_without_disconnect", "client"),
                                     ("ipv6", "graceful_disconnect", None)):
                cid = "px-%s-%s" % (v, kind)
                if cid not in cases:
                    continue
                c = tail.wait(5, "closed", cid)
                real = tail.find("connected", cid)[0]["client_real"] if tail.find("connected", cid) else None
                live.check("%s: closed %s%s, client_real kept" % (cid, reason, " by the client" if by else ""),
                           c and c[0]["reason"] == reason and (by is None or c[0]["closed_by"] == by)
                           and c[0]["client_real"] == real and real, c)

        for v in ("v2", "v1"):
            cid = "px-%s-hung" % v
            stopped_at = t_stop[v]
            deadline = stopped_at + FACTOR * K   # at the latest
            last_send = cases[cid][2].last_send()
            e = tail.wait(max(0, deadline - time.time()) + 3, "keepalive_expired", cid)
            real = tail.find("connected", cid)[0]["client_real"]
            if live.check("%s: hung client behind HAProxy: keepalive_expired with client_real %s" % (cid, real),
                          e and e[0]["client_real"] == real, tail.find(client_id=cid)):
                e = e[0]
                live.check("%s: expiry ts is exactly last_activity + %.1f s" % (cid, FACTOR * K),
                           abs(e["ts"] - (e["last_activity"] + FACTOR * K)) < 2e-6, e)
                live.check("%s: last_activity is the client's SUBSCRIBE (as the client logged it)" % cid,
                           abs(e["last_activity"] - last_send) < 0.1 and e["last_activity"] <= stopped_at,
                           "last_activity - client send = %.3f" % (e["last_activity"] - last_send))
                lag = e["_arrival"] - e["ts"]
                note("%s: keepalive_expired written %.0f ms after its deadline" % (cid, lag * 1000))
                live.check("%s: event written within 0.5 s after the deadline" % cid, -0.05 < lag < 0.5, lag)
            c = tail.wait(5, "closed", cid)
            live.check("%s: closed broker_close_keepalive by aedes, expired, client_real kept" % cid,
                       c and c[0]["reason"] == "broker_close_keepalive" and c[0]["closed_by"] == "broker"
                       and c[0]["expired"] and c[0]["client_real"] == real, c)
            if c and e:
                note("%s: aedes closed %.0f ms after mqttlive's deadline (rst=%s, client_tcp=%s)"
                     % (cid, (c[0]["ts"] - e["ts"]) * 1000, c[0]["rst"], c[0]["client_tcp"]))

        live.check("every event of a proxied connection carries client_real",
                   all(e.get("client_real") for e in tail.find() if e["client_id"] in cases),
                   [e for e in tail.find() if e["client_id"] in cases and not e.get("client_real")])
        # HAProxy's health checks: a v2 LOCAL header (with a CRC32C TLV), then a reset. They are
        # the proxy's own connections, not clients that vanished: mqttlive reports none of them.
        n_checks = aedes_log(live).count("PROXY v2 LOCAL (health check)")
        hc = [e for e in tail.find() if e["client_id"] is None and e["client_real"] is None and e["ts"] > t_haproxy]
        note("%d HAProxy health checks (PROXY v2 LOCAL) reached aedes; mqttlive events for them: %d"
             % (n_checks, len(hc)))
        live.check("HAProxy health checks (PROXY v2 LOCAL) reached aedes", n_checks >= 2, n_checks)
        live.check("mqttlive reports no event for them (not clients that vanished)", not hc, hc)
        # End HAProxy (its health checks) before the counters are compared.
        hp.terminate()
        hp.wait(5)
        extra = {}
        for ev in tail.find("closed"):
            if ev["client_id"] not in cases:   # port checks, probes, health checks
                extra[ev["reason"]] = extra.get(ev["reason"], 0) + 1
        n_clean = sum(1 for cid in cases if cid.endswith("clean") or cid.endswith("ipv6"))
        m, got, want = settled_metrics(web_port, {
            'mqttlive_connections_closed_total{reason="graceful_disconnect"}': n_clean,
            'mqttlive_connections_closed_total{reason="client_fin_without_disconnect"}': 3,
            'mqttlive_connections_closed_total{reason="broker_close_keepalive"}': 2,
            "mqttlive_keepalive_expirations_total": 2,
            'mqttlive_mqtt_packets_total{direction="client",type="CONNECT"}': len(cases) + n_probe,
        }, extra)
        live.check("metrics: closes by reason, expirations, CONNECTs", got == want,
                   {k: (got[k], want[k]) for k in want if got[k] != want[k]})
        live.check("metrics: no PROXY (transport), parse or TCP gap errors",
                   not nonzero(m, "mqttlive_transport_errors_total{") and not nonzero(m, "mqttlive_parse_errors_total{")
                   and not nonzero(m, "mqttlive_tcp_gaps_total{"),
                   nonzero(m, "mqttlive_transport_errors_total{") + nonzero(m, "mqttlive_parse_errors_total{")
                   + nonzero(m, "mqttlive_tcp_gaps_total{"))
        live.check("metrics: nothing left open or expired", not open_states(m), open_states(m))
    except Exception as ex:
        live.check("no exception", False, repr(ex))
    finally:
        for c in clients:
            c.reap()
        tail.close()
    print("took %.1f s" % (time.time() - t_start))
    return live.finish()


if __name__ == "__main__":
    sys.exit(main())
