#!/usr/bin/env python3
"""Scriptable raw MQTT 3.1.1/5 client process for the fault lab.

The fault lab runs one of these per client network namespace
(`ip netns exec ml-cN python3 client.py`) so that a scenario can SIGSTOP or
SIGKILL a real client process. It reads one JSON command per line on stdin and
answers each with one JSON line on stdout: {"ok": true, ...} or
{"ok": false, "error": "..."}. Times are time.time() wall clock, the same clock
mqttlive stamps its events with.

Commands (all take "cmd"; connection commands take "name"):
  connect    name client_id keepalive [level=4] host port  -> local_port, t_sent, server_keepalive, code
  ping       name                      PINGREQ and wait for PINGRESP -> t_sent
  disconnect name                      DISCONNECT then close
  close      name                      close without DISCONNECT (FIN)
  abort      name                      SO_LINGER 0 close (RST)
  wait_eof   name [timeout=10]         read until the broker closes -> disconnect_reason, t_eof
  pinger     name interval [reconnect=false]
                                       background PINGREQ every interval; with reconnect it
                                       reconnects with the same client id after the broker closes
  pingnow    name                      ask a pinger to ping now and wait for the PINGRESP
  status     name                      pinger history: pings, eofs, reconnects (local ports)
  storm      count threads host port prefix keepalive
                                       connect + DISCONNECT `count` connections -> local_ports
  burst      name bytes chunk          PUBLISH QoS 0 payloads totalling `bytes`
  exit
"""
import json
import select
import socket
import struct
import sys
import threading
import time


def _varint(n):
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _str(s):
    b = s.encode()
    return struct.pack(">H", len(b)) + b


def connect_packet(client_id, keepalive, level=4):
    var = _str("MQTT") + bytes([level, 0x02]) + struct.pack(">H", keepalive)
    if level == 5:
        var += b"\x00"  # no properties
    body = var + _str(client_id)
    return bytes([0x10]) + _varint(len(body)) + body


def publish_packet(topic, payload):
    body = _str(topic) + payload
    return bytes([0x30]) + _varint(len(body)) + body


def read_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError("connection closed by peer")
        buf += chunk
    return buf


def read_packet(sock):
    """(first byte, body) of the next MQTT control packet."""
    first = read_exact(sock, 1)[0]
    mult, length = 1, 0
    for _ in range(4):
        b = read_exact(sock, 1)[0]
        length += (b & 0x7F) * mult
        mult *= 128
        if not b & 0x80:
            break
    return first, read_exact(sock, length)


# MQTT 5 property id -> encoding, enough to walk a CONNACK's properties.
_PROP_TYPES = {}
for _i in (0x01, 0x17, 0x19, 0x24, 0x25, 0x28, 0x29, 0x2A):
    _PROP_TYPES[_i] = "byte"
for _i in (0x13, 0x21, 0x22, 0x23):
    _PROP_TYPES[_i] = "u16"
for _i in (0x02, 0x11, 0x18, 0x27):
    _PROP_TYPES[_i] = "u32"
for _i in (0x03, 0x08, 0x12, 0x15, 0x1A, 0x1C, 0x1F):
    _PROP_TYPES[_i] = "str"
for _i in (0x09, 0x16):
    _PROP_TYPES[_i] = "bin"
_PROP_TYPES[0x0B] = "varint"
_PROP_TYPES[0x26] = "pair"


def _read_varint(b, i):
    mult, val = 1, 0
    while True:
        c = b[i]
        i += 1
        val += (c & 0x7F) * mult
        mult *= 128
        if not c & 0x80:
            return val, i


def parse_properties(b, i):
    """Properties starting at b[i] (length varint first) -> dict id -> value."""
    plen, i = _read_varint(b, i)
    end = i + plen
    props = {}
    while i < end:
        pid, i = _read_varint(b, i)
        t = _PROP_TYPES.get(pid)
        if t == "byte":
            props[pid] = b[i]
            i += 1
        elif t == "u16":
            props[pid] = struct.unpack(">H", b[i:i + 2])[0]
            i += 2
        elif t == "u32":
            props[pid] = struct.unpack(">I", b[i:i + 4])[0]
            i += 4
        elif t == "varint":
            props[pid], i = _read_varint(b, i)
        elif t in ("str", "bin"):
            n = struct.unpack(">H", b[i:i + 2])[0]
            props[pid] = b[i + 2:i + 2 + n]
            i += 2 + n
        elif t == "pair":
            n = struct.unpack(">H", b[i:i + 2])[0]
            i += 2 + n
            n = struct.unpack(">H", b[i:i + 2])[0]
            i += 2 + n
        else:
            break  # unknown property: stop walking
    return props


class Conn:
    def __init__(self, name, client_id, keepalive, level, host, port):
        self.name, self.client_id, self.keepalive, self.level = name, client_id, keepalive, level
        self.host, self.port = host, port
        self.sock = None
        self.lock = threading.Lock()
        # pinger state
        self.pinger = None
        self.stop = False
        self.ping_now = threading.Event()
        self.pong = threading.Event()
        self.history = {"pings": [], "eofs": [], "reconnects": []}

    def open(self, timeout=5.0):
        s = socket.create_connection((self.host, self.port), timeout=timeout)
        t_sent = time.time()
        s.sendall(connect_packet(self.client_id, self.keepalive, self.level))
        first, body = read_packet(s)
        if first >> 4 != 2:
            s.close()
            raise RuntimeError("expected CONNACK, got packet type %d" % (first >> 4))
        code = body[1] if len(body) > 1 else None
        server_keepalive = None
        if self.level == 5 and len(body) > 2:
            server_keepalive = parse_properties(body, 2).get(0x13)
        self.sock = s
        return {"local_port": s.getsockname()[1], "local_addr": s.getsockname()[0], "t_sent": t_sent,
                "code": code, "server_keepalive": server_keepalive}


conns = {}
out_lock = threading.Lock()


def reply(obj):
    with out_lock:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()


def pinger_loop(c, interval, reconnect):
    next_ping = time.monotonic() + interval
    while not c.stop:
        if c.sock is None:
            # Broker went away: reconnect with the same client id, bounded.
            deadline = time.monotonic() + 30
            while not c.stop and time.monotonic() < deadline:
                try:
                    r = c.open(timeout=2)
                    c.history["reconnects"].append(r)
                    break
                except (OSError, EOFError, RuntimeError):
                    time.sleep(0.2)
            if c.sock is None:
                return
            next_ping = time.monotonic() + interval
            continue
        timeout = max(0.0, next_ping - time.monotonic())
        if c.ping_now.is_set():
            timeout = 0.0
        try:
            r, _, _ = select.select([c.sock], [], [], min(timeout, 0.05))
            if r:
                first, _ = read_packet(c.sock)
                if first >> 4 == 13:  # PINGRESP
                    c.pong.set()
                continue
            if c.ping_now.is_set() or time.monotonic() >= next_ping:
                c.ping_now.clear()
                t = time.time()
                c.sock.sendall(b"\xc0\x00")
                c.history["pings"].append(t)
                next_ping = time.monotonic() + interval
        except (OSError, EOFError):
            c.history["eofs"].append(time.time())
            try:
                c.sock.close()
            except OSError:
                pass
            c.sock = None
            if not reconnect:
                return


def storm(count, threads, host, port, prefix, keepalive):
    ports, errors = [], []
    lock = threading.Lock()
    idx = iter(range(count))

    def worker():
        while True:
            with lock:
                i = next(idx, None)
            if i is None:
                return
            try:
                c = Conn("s", "%s-%d" % (prefix, i), keepalive, 4, host, port)
                r = c.open()
                c.sock.sendall(b"\xe0\x00")
                c.sock.close()
                with lock:
                    ports.append(r["local_port"])
            except Exception as e:  # noqa: BLE001 - reported back to the lab
                with lock:
                    errors.append(repr(e))

    ts = [threading.Thread(target=worker) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return {"local_ports": sorted(ports), "errors": errors[:10], "error_count": len(errors)}


def handle(cmd):
    op = cmd["cmd"]
    name = cmd.get("name")
    if op == "connect":
        c = Conn(name, cmd["client_id"], int(cmd["keepalive"]), int(cmd.get("level", 4)), cmd["host"],
                 int(cmd["port"]))
        r = c.open()
        conns[name] = c
        return r
    if op == "exit":
        sys.exit(0)
    if op == "storm":
        return storm(int(cmd["count"]), int(cmd.get("threads", 8)), cmd["host"], int(cmd["port"]),
                     cmd["prefix"], int(cmd.get("keepalive", 30)))
    c = conns[name]
    if op == "ping":
        t = time.time()
        c.sock.sendall(b"\xc0\x00")
        c.sock.settimeout(5)
        first, _ = read_packet(c.sock)
        return {"t_sent": t, "type": first >> 4}
    if op == "disconnect":
        t = time.time()
        c.sock.sendall(b"\xe0\x00")
        c.sock.close()
        return {"t_sent": t}
    if op == "close":
        t = time.time()
        c.sock.close()
        return {"t_sent": t}
    if op == "abort":
        t = time.time()
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.sock.close()
        return {"t_sent": t}
    if op == "wait_eof":
        c.sock.settimeout(float(cmd.get("timeout", 10)))
        reason = None
        try:
            while True:
                first, body = read_packet(c.sock)
                if first >> 4 == 14:  # broker DISCONNECT (MQTT 5)
                    reason = body[0] if body else 0
        except EOFError:
            pass
        t = time.time()
        c.sock.close()
        return {"t_eof": t, "disconnect_reason": reason}
    if op == "pinger":
        c.pinger = threading.Thread(target=pinger_loop, args=(c, float(cmd["interval"]), bool(cmd.get("reconnect"))),
                                    daemon=True)
        c.pinger.start()
        return {}
    if op == "pingnow":
        c.pong.clear()
        c.ping_now.set()
        if not c.pong.wait(float(cmd.get("timeout", 5))):
            raise RuntimeError("no PINGRESP")
        return {"t_pong": time.time()}
    if op == "status":
        return {"history": c.history, "connected": c.sock is not None,
                "local_port": c.sock.getsockname()[1] if c.sock is not None else None}
    if op == "burst":
        total, chunk = int(cmd["bytes"]), int(cmd.get("chunk", 16384))
        payload = b"x" * chunk
        sent = 0
        c.sock.settimeout(30)
        while sent < total:
            c.sock.sendall(publish_packet("fault-lab/burst", payload))
            sent += chunk
        return {"sent": sent}
    raise ValueError("unknown command %r" % op)


def main():
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            cmd = json.loads(line)
            r = handle(cmd)
            r["ok"] = True
            reply(r)
        except SystemExit:
            raise
        except Exception as e:  # noqa: BLE001 - every failure goes back to the lab as data
            reply({"ok": False, "error": "%s: %s" % (type(e).__name__, e)})


if __name__ == "__main__":
    main()
