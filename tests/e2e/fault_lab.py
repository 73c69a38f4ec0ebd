#!/usr/bin/env python3
"""Fault lab: proves mqttlive end to end against real network faults.

Topology (everything lives in network namespaces this script creates; the only
addresses ever targeted are 10.231.0.0/24 inside them and 127.0.0.1 inside
ml-broker):

    ml-broker:  bridge mlbr0 10.231.0.1/24
                mosquitto A  10.231.0.1:1883  (MQTT 3.1.1/5, no max_keepalive)
                mosquitto B  10.231.0.1:1884  (max_keepalive 10: MQTT 5 Server Keep Alive)
                aedes        10.231.0.1:1885  (a second, independent broker: tests/e2e/aedes,
                             Node.js; scenarios A1-A4 run against it in parallel with phase A)
                mqttlive     capturing on mlbr0, metrics 127.0.0.1:9883
                mqttlive     second instance, 1 MiB capture buffer, metrics 127.0.0.1:9884
                             (only used to provoke capture drops)
                prometheus   127.0.0.1:9090, scrapes both every 1s, evaluates a test copy of
                             deploy/prometheus/mqttlive-alerts.yml every 1s
    ml-cN:      one client host each, eth0 10.231.0.X/24, veth peer mlv-cN on mlbr0;
                one tests/e2e/client.py process per host (so it can be SIGSTOPped/SIGKILLed)

The alert rules are the production file with two mechanical changes (made by
shortened_rules() below) so they can fire within a test: every non-zero `for:`
becomes 5s, and every range window / subquery range and step is divided by 10
([5m] -> [30s], [2m] -> [12s], [1h] -> [360s], [10m:1m] -> [60s:6s]).

Usage: fault_lab.py MQTTLIVE_BINARY (FAULT_LAB_KEEP_LOGS=1 keeps the logs and the
events file of a green run too). Needs root (network namespaces). Without the
permission to create namespaces it prints SKIP and exits 0, unless CI=true.
Prints "N passed, N failed" last; exits non-zero on any failure.
"""
import concurrent.futures
import ctypes
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
CLIENT_PY = os.path.join(HERE, "client.py")
AEDES_DIR = os.path.join(HERE, "aedes")
RULES_FILE = os.path.join(REPO, "deploy", "prometheus", "mqttlive-alerts.yml")
CI = os.environ.get("CI", "").lower() == "true"

BR_NS = "ml-broker"
BRIDGE = "mlbr0"
BROKER_IP = "10.231.0.1"
PORT_A = 1883          # main broker
PORT_B = 1884          # broker with max_keepalive (Server Keep Alive)
PORT_AEDES = 1885      # aedes, the second broker implementation
SERVER_KEEPALIVE = 10    # Mosquitto 2.0 refuses max_keepalive < 10
MAIN_WEB = 9883
DROPS_WEB = 9884
PROM_WEB = 9090
K = 2                  # keepalive of the silent clients (even: Mosquitto's 1.5*K is exact)
FACTOR = 1.5
IDLE = 5               # keepalive.no_keepalive_idle_seconds
SETTLE = 1             # keepalive.close_settle_seconds
STORM = 300
LB_CUTS, LB_AGE = 24, 3  # phase E: connections reset at the same age, like a middlebox idle timeout
# Client hosts: namespace -> last octet of its address.
HOSTS = {
    "ml-c1": 11, "ml-c1b": 12, "ml-c1c": 13,   # 1. vanished hosts (link cut)
    "ml-c2": 21,                               # 2. hung application (SIGSTOP)
    "ml-c3": 31, "ml-c3b": 32,                 # 3. killed (FIN) / aborted (RST)
    "ml-c4": 41,                               # 4. keepalive 0, vanished
    "ml-c5a": 51, "ml-c5b": 52,                # 5. takeover flapping
    "ml-c6": 61,                               # 6. MQTT 5 Server Keep Alive
    "ml-c7": 71, "ml-c7m": 72,                 # 7. broker restart / midstream pickup
    "ml-c8": 81,                               # 8. reconnect storm
    "ml-c9": 91,                               # capture drops burst
    "ml-c14": 141,                             # E. connections cut at one age (idle timeout)
    # aedes (PORT_AEDES)
    "ml-c10": 101,                             # A1. vanished host (link cut)
    "ml-c11": 111,                             # A2. hung application (SIGSTOP)
    "ml-c12a": 121, "ml-c12b": 122,            # A3. takeover
    "ml-c13": 131,                             # A4. clean DISCONNECT
}
OUR_NS = re.compile(r"^ml-(broker|c\d+[a-z]?)$")

results = []
procs = []            # (name, Popen) of everything we started
tmp = tempfile.mkdtemp(prefix="mqttlive-faultlab-")
T0 = time.time()


class LabError(Exception):
    pass


def log(msg):
    print("[%6.1fs] %s" % (time.time() - T0, msg), flush=True)


def check(name, cond, detail=""):
    results.append((name, bool(cond)))
    print(("ok   " if cond else "FAIL ") + name + ("" if cond else "  -- " + str(detail)[:2000]), flush=True)
    return bool(cond)


def run(cmd, check_rc=True, timeout=20):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check_rc and p.returncode != 0:
        raise LabError("%s -> rc %d: %s" % (" ".join(cmd), p.returncode, (p.stderr or p.stdout).strip()))
    return p


def wait_for(pred, timeout, step=0.1):
    end = time.time() + timeout
    while True:
        try:
            v = pred()
        except Exception:  # noqa: BLE001 - a probe that fails is "not yet"
            v = None
        if v or time.time() >= end:
            return v
        time.sleep(step)


# ---------------------------------------------------------------- namespaces

def list_our_ns():
    p = run(["ip", "netns", "list"], check_rc=False)
    names = [l.split()[0] for l in p.stdout.splitlines() if l.strip()]
    return [n for n in names if OUR_NS.match(n)]


def kill_ns_processes(ns):
    """Processes left inside one of our namespaces (by a crashed earlier run)."""
    p = run(["ip", "netns", "pids", ns], check_rc=False)
    for pid in p.stdout.split():
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass


def remove_namespaces():
    leftovers = list_our_ns()
    for ns in leftovers:
        kill_ns_processes(ns)
    if leftovers:
        time.sleep(0.2)
    for ns in leftovers:
        run(["ip", "netns", "del", ns], check_rc=False)


def build_topology():
    try:
        run(["ip", "netns", "add", BR_NS])
    except LabError as e:
        if "Operation not permitted" in str(e) or "Permission denied" in str(e):
            raise PermissionError(str(e))
        raise
    b = ["ip", "-n", BR_NS]
    run(b + ["link", "set", "lo", "up"])
    # A fixed MAC: otherwise the bridge takes its lowest port MAC, changes it as ports
    # are added, and every change flushes the neighbour table (permanent entries too).
    run(b + ["link", "add", BRIDGE, "address", "02:31:00:00:00:01", "type", "bridge"])
    run(b + ["addr", "add", BROKER_IP + "/24", "dev", BRIDGE])
    run(b + ["link", "set", BRIDGE, "up"])
    for ns, octet in HOSTS.items():
        veth = "mlv-" + ns[3:]
        run(["ip", "netns", "add", ns])
        run(b + ["link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns])
        run(b + ["link", "set", veth, "master", BRIDGE, "up"])
        c = ["ip", "-n", ns]
        run(c + ["link", "set", "lo", "up"])
        run(c + ["addr", "add", "10.231.0.%d/24" % octet, "dev", "eth0"])
        run(c + ["link", "set", "eth0", "up"])
    # Permanent neighbour entries: packets to a host that vanished (FIN retransmits,
    # a RST) still leave through mlbr0, and are captured, instead of dying in ARP.
    for ns, octet in HOSTS.items():
        mac = run(["ip", "netns", "exec", ns, "cat", "/sys/class/net/eth0/address"]).stdout.strip()
        run(b + ["neigh", "replace", "10.231.0.%d" % octet, "lladdr", mac, "dev", BRIDGE, "nud", "permanent"])
    neigh = run(b + ["neigh", "show", "dev", BRIDGE]).stdout
    if sum("PERMANENT" in l for l in neigh.splitlines()) != len(HOSTS):
        raise LabError("neighbour entries not permanent:\n" + neigh)


def host_ip(ns):
    return "10.231.0.%d" % HOSTS[ns]


# ------------------------------------------- HTTP inside ml-broker via setns

_libc = ctypes.CDLL(None, use_errno=True)
_CLONE_NEWNET = 0x40000000


def _enter_broker_ns():
    fd = os.open("/var/run/netns/" + BR_NS, os.O_RDONLY)
    try:
        if _libc.setns(fd, _CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))
    finally:
        os.close(fd)


_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
_pool = None


def _http_get(url, timeout):
    with _opener.open(url, timeout=timeout) as r:
        return r.read().decode()


def http_get(url, timeout=3):
    """GET from inside ml-broker (threads of _pool live in that namespace)."""
    return _pool.submit(_http_get, url, timeout).result(timeout + 5)


def scrape(port=MAIN_WEB, path="/metrics"):
    return http_get("http://127.0.0.1:%d%s" % (port, path))


_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)')


def metric(text, name, **labels):
    """Sum of the samples of `name` whose labels include `labels`."""
    total, found = 0.0, False
    for line in text.splitlines():
        m = _SAMPLE.match(line)
        if not m or m.group(1) != name:
            continue
        ls = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        if all(ls.get(k) == v for k, v in labels.items()):
            total += float(m.group(3))
            found = True
    return total if found else None


def prom_api(path, **params):
    q = urllib.parse.urlencode(params)
    body = json.loads(http_get("http://127.0.0.1:%d/api/v1/%s%s" % (PROM_WEB, path, "?" + q if q else "")))
    if body.get("status") != "success":
        raise LabError("prometheus %s: %s" % (path, body))
    return body["data"]


def prom_query(expr):
    return prom_api("query", query=expr)["result"]


def prom_scalar(expr):
    r = prom_query(expr)
    return float(r[0]["value"][1]) if r else None


def active_alerts():
    return prom_api("alerts")["alerts"]


def firing(name, **labels):
    return [a for a in active_alerts() if a["labels"].get("alertname") == name and a["state"] == "firing"
            and all(a["labels"].get(k) == v for k, v in labels.items())]


# ------------------------------------------------------------------ processes

def start(name, cmd, ns=BR_NS, **kw):
    log_path = os.path.join(tmp, name + ".log")
    full = ["ip", "netns", "exec", ns] + cmd if ns else cmd
    p = subprocess.Popen(full, stdout=kw.pop("stdout", open(log_path, "a")), stderr=open(log_path, "a"),
                         start_new_session=True, **kw)
    procs.append((name, p))
    return p


def stop(p, sig=signal.SIGTERM, timeout=5):
    if p.poll() is not None:
        return p.returncode
    try:
        os.kill(p.pid, signal.SIGCONT)
        os.kill(p.pid, sig)
        return p.wait(timeout)
    except subprocess.TimeoutExpired:
        os.kill(p.pid, signal.SIGKILL)
        return p.wait(5)
    except ProcessLookupError:
        return p.wait(5)


class ClientProc:
    """One tests/e2e/client.py inside a client namespace, driven by JSON lines."""

    def __init__(self, ns):
        self.ns = ns
        self.ip = host_ip(ns)
        self.p = start("client-" + ns, [sys.executable, "-u", CLIENT_PY], ns=ns,
                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        self.q = queue.Queue()
        threading.Thread(target=self._reader, daemon=True).start()

    def _reader(self):
        for line in self.p.stdout:
            self.q.put(line)
        self.q.put(None)

    def send(self, **cmd):
        self.p.stdin.write(json.dumps(cmd) + "\n")
        self.p.stdin.flush()

    def recv(self, timeout=15):
        try:
            line = self.q.get(timeout=timeout)
        except queue.Empty:
            raise LabError("client %s: no answer within %ss" % (self.ns, timeout))
        if line is None:
            raise LabError("client %s exited" % self.ns)
        r = json.loads(line)
        if not r.get("ok"):
            raise LabError("client %s: %s" % (self.ns, r.get("error")))
        return r

    def call(self, timeout=15, **cmd):
        self.send(**cmd)
        return self.recv(timeout)

    def connect(self, name, client_id, keepalive, level=4, port=PORT_A):
        r = self.call(cmd="connect", name=name, client_id=client_id, keepalive=keepalive, level=level,
                      host=BROKER_IP, port=port)
        r["endpoint"] = "%s:%d" % (self.ip, r["local_port"])
        return r

    def link_down(self):
        run(["ip", "-n", self.ns, "link", "set", "dev", "eth0", "down"])

    def signal(self, sig):
        os.kill(self.p.pid, sig)


def listening(port, timeout=10):
    """Wait for a listening socket (ss, not a probe connection mqttlive would see)."""
    def probe():
        out = run(["ip", "netns", "exec", BR_NS, "ss", "-Hltn", "src", BROKER_IP, "sport", "=", str(port)]).stdout
        return out.strip() != ""
    return wait_for(probe, timeout, 0.1)


# --------------------------------------------------------------- event stream

class EventLog:
    """Tails mqttlive's events file; remembers when (wall time) each line appeared."""

    def __init__(self, path):
        self.path = path
        self.events = []
        self.lock = threading.Lock()
        self.stop = False
        self.bad = []
        threading.Thread(target=self._tail, daemon=True).start()

    def _tail(self):
        pos, partial = 0, ""
        while not self.stop:
            try:
                with open(self.path) as f:
                    f.seek(pos)
                    data = f.read()
                    pos = f.tell()
            except FileNotFoundError:
                data = ""
            now = time.time()
            if data:
                partial += data
                *lines, partial = partial.split("\n")
                for l in lines:
                    if not l.strip():
                        continue
                    try:
                        e = json.loads(l)
                    except ValueError:
                        self.bad.append(l)
                        continue
                    e["_arrival"] = now
                    with self.lock:
                        self.events.append(e)
            time.sleep(0.01)

    def find(self, kind=None, client=None, cid=None, pred=None):
        with self.lock:
            evs = list(self.events)
        return [e for e in evs if (kind is None or e["event"] == kind)
                and (client is None or e.get("client") == client)
                and (cid is None or e.get("client_id") == cid)
                and (pred is None or pred(e))]

    def wait(self, timeout, **kw):
        return wait_for(lambda: self.find(**kw), timeout, 0.02)


def brief(e):
    return {k: v for k, v in e.items() if k != "_arrival"} if e else e


# ------------------------------------------------------------- alert rules

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


def _seconds(d):
    parts = re.findall(r"(\d+)(ms|s|m|h|d|w|y)", d)
    if not parts or "".join(a + b for a, b in parts) != d:
        raise LabError("cannot parse duration %r" % d)
    return sum(int(a) * _UNITS[b] for a, b in parts)


def shortened_rules(text):
    """The production rules with `for:` -> 5s and every range window / subquery /10."""
    def for_repl(m):
        return m.group(1) + ("0s" if _seconds(m.group(2)) == 0 else "5s")

    def window_repl(m):
        rng = "%ds" % max(1, round(_seconds(m.group(1)) / 10))
        if m.group(2) is None:
            return "[" + rng + "]"
        step = "%ds" % max(1, round(_seconds(m.group(2)) / 10)) if m.group(2) else ""
        return "[" + rng + ":" + step + "]"

    text = re.sub(r"(^\s*for:\s*)(\S+)", for_repl, text, flags=re.M)
    return re.sub(r"\[(\d+(?:ms|s|m|h|d|w|y)(?:\d+(?:ms|s|m|h|d|w|y))*)(?::(\d+(?:ms|s|m|h|d|w|y))?)?\]",
                  window_repl, text)


class AlertMonitor:
    """Polls /api/v1/alerts every second; remembers every (alert, state, job) ever seen."""

    def __init__(self):
        self.seen = {}   # (name, state, job) -> first time seen
        self.stop = False
        self.errors = 0
        threading.Thread(target=self._poll, daemon=True).start()

    def _poll(self):
        while not self.stop:
            try:
                for a in active_alerts():
                    key = (a["labels"].get("alertname"), a["state"], a["labels"].get("job"))
                    self.seen.setdefault(key, time.time())
            except Exception:  # noqa: BLE001
                self.errors += 1
            time.sleep(1.0)

    def ever(self, name, state=None, job=None):
        return [k for k in self.seen if k[0] == name and (state is None or k[1] == state)
                and (job is None or k[2] == job)]


# ------------------------------------------------------------------ the lab

def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def mosquitto_conf(name, port, extra=""):
    return write(os.path.join(tmp, name + ".conf"),
                 "per_listener_settings false\nallow_anonymous true\npersistence false\nlog_dest stderr\n"
                 "log_type error\nlog_type warning\nlog_type notice\nlog_type information\n"
                 "connection_messages true\n%slistener %d %s\n" % (extra, port, BROKER_IP))


def start_mosquitto(name, conf, port):
    p = start(name, ["mosquitto", "-c", conf])
    if not listening(port, 10):
        raise LabError("%s did not listen on %s:%d" % (name, BROKER_IP, port))
    return p


def start_aedes():
    p = start("aedes", ["node", os.path.join(AEDES_DIR, "broker.js"), BROKER_IP, str(PORT_AEDES)])
    if not listening(PORT_AEDES, 15):
        raise LabError("aedes did not listen on %s:%d" % (BROKER_IP, PORT_AEDES))
    return p


def aedes_scenarios(ev, out):
    """A1-A4 against aedes, the second broker; runs in a thread alongside phase A.

    Observed differences from Mosquitto 2.0 (aedes 0.51.3 on Node.js):
    - keepalive enforcement: aedes arms a timer of keepalive x 1500 ms + 1 ms, re-armed
      on every packet, so it closes 3-51 ms (5 runs) after mqttlive's deadline (last activity +
      1.5 x keepalive); Mosquitto 2.0 checks keepalives every ~6 s and closes up to ~8 s
      after it.
    - after a client's DISCONNECT aedes closes its own side at once, so the first FIN of a
      graceful close sometimes comes from the broker (1 run in 5 here), not the client.
    - how it closes: on keepalive timeout and on takeover aedes destroys the socket
      without sending anything first; the kernel sends a plain FIN (no RST, no MQTT
      DISCONNECT) - the same as Mosquitto for 3.1.1. The `rst` flag of each close is
      logged (NOTE lines) rather than asserted beyond what the reason requires.
    """
    va, hg = ClientProc("ml-c10"), ClientProc("ml-c11")
    ta, tb, cd = ClientProc("ml-c12a"), ClientProc("ml-c12b"), ClientProc("ml-c13")
    con = {"vanish": va.connect("m", "aedes-vanish", K, port=PORT_AEDES),
           "hung": hg.connect("m", "aedes-hung", K, port=PORT_AEDES)}
    out.update({k: v["endpoint"] for k, v in con.items()})
    va.link_down()
    hg.signal(signal.SIGSTOP)

    # A3. takeover: a second connection with the same client id.
    t1 = ta.connect("t", "aedes-flap", 30, port=PORT_AEDES)
    time.sleep(0.3)
    t2 = tb.connect("t", "aedes-flap", 30, port=PORT_AEDES)
    eof = ta.call(cmd="wait_eof", name="t", timeout=10)
    log("A3. aedes closed the taken-over connection; the old client saw DISCONNECT reason %s (None = plain FIN)"
        % eof.get("disconnect_reason"))
    t = ev.wait(3, kind="takeover", client=t2["endpoint"])
    check("A3. aedes takeover: takeover event names the new %s and the previous %s" % (t2["endpoint"], t1["endpoint"]),
          t and t[0]["client_id"] == "aedes-flap" and t[0]["previous_client"] == t1["endpoint"], brief(t and t[0]))
    c = ev.wait(5, kind="closed", client=t1["endpoint"])
    check("A3. aedes takeover: old connection closed broker_close_takeover by broker",
          c and c[0]["reason"] == "broker_close_takeover" and c[0]["closed_by"] == "broker", brief(c and c[0]))
    if c:
        log("NOTE aedes takeover close: rst=%s" % c[0]["rst"])

    # A4. clean DISCONNECT
    r = cd.connect("c", "aedes-clean", 30, port=PORT_AEDES)
    cd.call(cmd="disconnect", name="c")
    c = ev.wait(5, kind="closed", client=r["endpoint"])
    # aedes closes its side as soon as it reads the DISCONNECT (MQTT-3.14.4: "SHOULD close
    # the Network Connection if the Client has not already done so"), racing the client's
    # own close: closed_by is client or broker, whichever FIN is first; the reason is the same.
    check("A4. aedes clean DISCONNECT: closed graceful_disconnect",
          c and c[0]["reason"] == "graceful_disconnect" and c[0]["closed_by"] in ("client", "broker"),
          brief(c and c[0]))
    if c:
        log("NOTE aedes clean DISCONNECT: first FIN from the %s" % c[0]["closed_by"])
    tb.call(cmd="disconnect", name="t")
    c = ev.wait(5, kind="closed", client=t2["endpoint"])
    check("A3. aedes: the takeover winner's DISCONNECT is graceful_disconnect",
          c and c[0]["reason"] == "graceful_disconnect", brief(c and c[0]))

    # A1/A2: expiry at the exact deadline, then aedes's keepalive close.
    for key, label, tcp in (("vanish", "A1. aedes vanished host", "unresponsive"),
                            ("hung", "A2. aedes hung app", "responsive")):
        ep, deadline = con[key]["endpoint"], con[key]["t_sent"] + FACTOR * K
        e = wait_for(lambda: ev.find(kind="keepalive_expired", client=ep), max(0, deadline - time.time()) + 3, 0.02)
        if check("%s: keepalive_expired" % label, e, ev.find(client=ep)):
            e = e[0]
            check("%s: expiry ts is exactly last_activity + %.1f" % (label, FACTOR * K),
                  abs(e["ts"] - (e["last_activity"] + FACTOR * K)) < 2e-6, brief(e))
            check("%s: expiry ts within 0.5 s of the true deadline (client send + %.1f s)" % (label, FACTOR * K),
                  abs(e["ts"] - deadline) < 0.5, "ts - deadline = %.3f" % (e["ts"] - deadline))
            lag = e["_arrival"] - deadline
            check("%s: event written within 0.5 s after the deadline (wall clock)" % label, -0.05 < lag < 0.5,
                  "arrival - deadline = %.3f s" % lag)
        c = ev.wait(10, kind="closed", client=ep)
        check("%s: closed broker_close_keepalive, client_tcp %s, expired, by broker" % (label, tcp),
              c and c[0]["reason"] == "broker_close_keepalive" and c[0]["client_tcp"] == tcp and c[0]["expired"]
              and c[0]["closed_by"] == "broker", brief(c and c[0]))
        if c and e:
            log("NOTE %s: aedes closed %.3f s after the expiry deadline (mqttlive ts), rst=%s"
                % (label, c[0]["ts"] - e["ts"], c[0]["rst"]))
            check("%s: aedes enforces at the deadline (close within 0.5 s of it, not before)" % label,
                  -0.01 <= c[0]["ts"] - e["ts"] < 0.5, c[0]["ts"] - e["ts"])


def main():
    global _pool
    for tool in ("ip", "mosquitto", "prometheus", "promtool", "ss", "node"):
        if shutil.which(tool) is None:
            msg = "required tool '%s' is not installed (scripts/setup.sh installs it)" % tool
            if CI:
                check("prerequisite: " + tool, False, msg)
                return
            print("SKIP: " + msg)
            return "skip"
    if not os.path.isdir(os.path.join(AEDES_DIR, "node_modules", "aedes")):
        msg = "aedes is not installed in %s (scripts/setup.sh runs npm ci there)" % AEDES_DIR
        if CI:
            check("prerequisite: aedes", False, msg)
            return
        print("SKIP: " + msg)
        return "skip"
    binary = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else None
    if not binary or not os.access(binary, os.X_OK):
        check("mqttlive binary given and executable", False, sys.argv[1:])
        return

    remove_namespaces()  # leftovers of a crashed earlier run
    try:
        build_topology()
    except PermissionError as e:
        if CI:
            check("can create network namespaces (CI=true: a skip is not allowed)", False, e)
            return
        print("SKIP: cannot create network namespaces (%s); the fault lab needs root / CAP_SYS_ADMIN" % e)
        return "skip"
    _pool = concurrent.futures.ThreadPoolExecutor(4, initializer=_enter_broker_ns)
    log("topology up: %s with %d client hosts" % (BR_NS, len(HOSTS)))

    # ---- alert rules: names from the production file, shortened test copy
    rules_text = open(RULES_FILE).read()
    alert_names = re.findall(r"^\s*-\s*alert:\s*(\S+)", rules_text, flags=re.M)

    def alert(part):
        m = [n for n in alert_names if part.lower() in n.lower()]
        return m[0] if len(m) == 1 else None
    A_HALF, A_VANISH, A_TAKEOVER = alert("HalfOpen"), alert("Vanishing"), alert("Takeover")
    A_DROP, A_STORM = alert("CaptureDrop"), alert("ReconnectStorm")
    A_FLAP, A_LB = alert("ClientsFlapping"), alert("IdleTimeout")  # gauges of mqttlive's flap/storm detector
    if not check("alert rules name the half-open, vanishing, takeover, capture-drop, storm, flapping and "
                 "idle-timeout alerts", all([A_HALF, A_VANISH, A_TAKEOVER, A_DROP, A_STORM, A_FLAP, A_LB]),
                 alert_names):
        return
    test_rules = write(os.path.join(tmp, "alerts-shortened.yml"), shortened_rules(rules_text))
    p = run(["promtool", "check", "rules", test_rules], check_rc=False)
    check("shortened rules copy passes promtool check rules", p.returncode == 0, p.stdout + p.stderr)
    log("rules: for -> 5s, windows /10 (%s)" % test_rules)

    # ---- brokers, then a client that connects before mqttlive starts
    conf_a = mosquitto_conf("mosquitto-a", PORT_A)
    mosq_a = start_mosquitto("mosquitto-a", conf_a, PORT_A)
    start_mosquitto("mosquitto-b", mosquitto_conf("mosquitto-b", PORT_B, "max_keepalive %d\n" % SERVER_KEEPALIVE),
                    PORT_B)
    start_aedes()
    midc = ClientProc("ml-c7m")
    mid = midc.connect("m", "restart-mid", 3)
    midc.call(cmd="pinger", name="m", interval=2.0, reconnect=True)
    time.sleep(1.0)

    # ---- mqttlive (main) and a second instance with a tiny capture buffer
    events_path = os.path.join(tmp, "events.jsonl")
    cfg = write(os.path.join(tmp, "mqttlive.yaml"),
                "capture:\n  interfaces: [%s]\n  timeout_ms: 20\n"
                "listeners:\n  - port: %d\n    kind: mqtt\n  - port: %d\n    kind: mqtt\n  - port: %d\n    kind: mqtt\n"
                "keepalive:\n  factor: %s\n  no_keepalive_idle_seconds: %d\n  close_settle_seconds: %d\n"
                "metrics:\n  listen_address: \"127.0.0.1:%d\"\nevents:\n  output: %s\n"
                % (BRIDGE, PORT_A, PORT_B, PORT_AEDES, FACTOR, IDLE, SETTLE, MAIN_WEB, events_path))
    live = start("mqttlive", [binary, "--config.file", cfg])
    ev = EventLog(events_path)
    drops_cfg = write(os.path.join(tmp, "mqttlive-drops.yaml"),
                      "capture:\n  interfaces: [%s]\n  timeout_ms: 20\n  buffer_size_bytes: 1048576\n"
                      "listeners:\n  - port: %d\nmetrics:\n  listen_address: \"127.0.0.1:%d\"\n"
                      "events:\n  output: %s\n"
                      % (BRIDGE, PORT_A, DROPS_WEB, os.path.join(tmp, "events-drops.jsonl")))
    live_drops = start("mqttlive-drops", [binary, "--config.file", drops_cfg])
    check("mqttlive serves /healthz", wait_for(lambda: scrape(MAIN_WEB, "/healthz"), 10))
    check("second mqttlive (1 MiB buffer) serves /healthz", wait_for(lambda: scrape(DROPS_WEB, "/healthz"), 10))

    # ---- prometheus
    prom_cfg = write(os.path.join(tmp, "prometheus.yml"),
                     "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n"
                     "rule_files:\n  - %s\nscrape_configs:\n"
                     "  - job_name: mqttlive\n    static_configs:\n      - targets: ['127.0.0.1:%d']\n"
                     "  - job_name: mqttlive_drops\n    static_configs:\n      - targets: ['127.0.0.1:%d']\n"
                     % (test_rules, MAIN_WEB, DROPS_WEB))
    start("prometheus", ["prometheus", "--config.file=" + prom_cfg, "--storage.tsdb.path=" + os.path.join(tmp, "tsdb"),
                         "--web.listen-address=127.0.0.1:%d" % PROM_WEB, "--log.level=warn"])
    check("prometheus ready", wait_for(lambda: "Ready" in http_get("http://127.0.0.1:%d/-/ready" % PROM_WEB), 30, 0.25))
    check("prometheus scrapes both mqttlive instances",
          wait_for(lambda: prom_scalar('sum(up{job=~"mqttlive|mqttlive_drops"})') == 2, 20, 0.25))
    groups = prom_api("rules", type="alert")["groups"]
    loaded = sorted(r["name"] for g in groups for r in g["rules"])
    check("prometheus loaded every alert rule of the shortened copy", loaded == sorted(alert_names), loaded)
    # Quiet point: both targets up, nothing has happened yet. (Right after start
    # MqttliveDown may be pending/firing from absent(up): Prometheus hands targets to
    # the scraper up to 5 s after start, and the test copy has `for: 5s`.)
    time.sleep(2)
    quiet = wait_for(lambda: not active_alerts(), 10, 0.5)
    check("quiet point: no alert pending or firing before any fault", quiet,
          [(a["labels"]["alertname"], a["state"]) for a in active_alerts()])
    mon = AlertMonitor()  # from here on, every alert seen is recorded
    log("prometheus up, quiet point checked")

    # ================================================ phase A: hosts vanish
    log("phase A: vanished hosts, hung app, FIN/RST, keepalive 0, server keepalive; aedes A1-A4 alongside")
    aedes_eps, aedes_err = {}, []

    def aedes_thread():
        try:
            aedes_scenarios(ev, aedes_eps)
        except Exception as x:  # noqa: BLE001
            aedes_err.append("%s: %s" % (type(x).__name__, x))
    aedes_run = threading.Thread(target=aedes_thread, daemon=True)
    aedes_run.start()
    names_a = ["ml-c1", "ml-c1b", "ml-c1c", "ml-c2", "ml-c3", "ml-c3b", "ml-c4", "ml-c6"]
    cl = {ns: ClientProc(ns) for ns in names_a}
    spec = {"ml-c1": ("vanish-1", K, 4, PORT_A), "ml-c1b": ("vanish-2", K, 4, PORT_A),
            "ml-c1c": ("vanish-3", K, 4, PORT_A), "ml-c2": ("hung-1", K, 4, PORT_A),
            "ml-c3": ("killed-1", 30, 4, PORT_A), "ml-c3b": ("aborted-1", 30, 4, PORT_A),
            "ml-c4": ("zero-1", 0, 4, PORT_A), "ml-c6": ("v5-server-ka", 60, 5, PORT_B)}
    for ns, (cid, ka, level, port) in spec.items():
        cl[ns].send(cmd="connect", name="m", client_id=cid, keepalive=ka, level=level, host=BROKER_IP, port=port)
    con = {}
    for ns in spec:
        con[ns] = cl[ns].recv()
        con[ns]["endpoint"] = "%s:%d" % (cl[ns].ip, con[ns]["local_port"])
    t_zero = con["ml-c4"]["t_sent"]
    idle_seen = {}

    def sample_idle():  # when does the gauge first show the idle keepalive-0 client?
        end = time.time() + IDLE + 10
        while time.time() < end and "at" not in idle_seen:
            try:
                if (metric(scrape(), "mqttlive_connections", state="no_keepalive_idle") or 0) >= 1:
                    idle_seen["at"] = time.time()
            except Exception:  # noqa: BLE001
                pass
            time.sleep(0.05)
    idle_sampler = threading.Thread(target=sample_idle, daemon=True)
    idle_sampler.start()
    for ns in ("ml-c1", "ml-c1b", "ml-c1c", "ml-c4"):
        cl[ns].link_down()
    cl["ml-c2"].signal(signal.SIGSTOP)
    cl["ml-c3"].signal(signal.SIGKILL)
    cl["ml-c3b"].call(cmd="abort", name="m")
    cl["ml-c6"].send(cmd="wait_eof", name="m", timeout=25)
    log("faults injected")

    # 3. killed / aborted
    e = ev.wait(5, kind="closed", client=con["ml-c3"]["endpoint"])
    check("3. SIGKILLed client (kernel FIN): closed client_fin_without_disconnect",
          e and e[0]["reason"] == "client_fin_without_disconnect" and e[0]["closed_by"] == "client", brief(e and e[0]))
    e = ev.wait(5, kind="closed", client=con["ml-c3b"]["endpoint"])
    check("3. SO_LINGER-0 client (RST): closed client_rst_without_disconnect",
          e and e[0]["reason"] == "client_rst_without_disconnect" and e[0]["rst"], brief(e and e[0]))

    # 6. server keepalive
    e = ev.wait(5, kind="connected", client=con["ml-c6"]["endpoint"])
    check("6. Mosquitto sent Server Keep Alive %d in CONNACK" % SERVER_KEEPALIVE,
          con["ml-c6"]["server_keepalive"] == SERVER_KEEPALIVE, con["ml-c6"])
    check("6. connected: keepalive %d, keepalive_source server_keepalive, keepalive_requested 60" % SERVER_KEEPALIVE,
          e and e[0]["keepalive"] == SERVER_KEEPALIVE and e[0]["keepalive_source"] == "server_keepalive"
          and e[0]["keepalive_requested"] == 60 and e[0]["protocol"] == "5.0", brief(e and e[0]))

    def check_expiry(label, ns, k):
        deadline = con[ns]["t_sent"] + FACTOR * k
        e = ev.wait(FACTOR * k + 3, kind="keepalive_expired", client=con[ns]["endpoint"])
        if not check("%s: keepalive_expired" % label, e, ev.find(client=con[ns]["endpoint"])):
            return None
        e = e[0]
        check("%s: expiry ts is exactly last_activity + %.1f x %d" % (label, FACTOR, k),
              abs(e["ts"] - (e["last_activity"] + FACTOR * k)) < 2e-6, brief(e))
        check("%s: expiry ts within 0.5 s of the true deadline (client send + %.1f s)" % (label, FACTOR * k),
              abs(e["ts"] - deadline) < 0.5, "ts - deadline = %.3f" % (e["ts"] - deadline))
        lag = e["_arrival"] - deadline
        check("%s: event written within 0.5 s after the deadline (wall clock)" % label, -0.05 < lag < 0.5,
              "arrival - deadline = %.3f s" % lag)
        return lag

    lags = {}
    for ns, label in (("ml-c1", "1. vanished host"), ("ml-c1b", "1. vanished host #2"),
                      ("ml-c1c", "1. vanished host #3"), ("ml-c2", "2. hung app"), ("ml-c6", "6. v5 server keepalive")):
        lags[label] = check_expiry(label, ns, SERVER_KEEPALIVE if ns == "ml-c6" else K)
    log("expiry lags (arrival - deadline): %s" % {k: None if v is None else round(v, 3) for k, v in lags.items()})

    # Mosquitto 2.0 checks keepalives every ~6 s: closes land up to ~8 s after the deadline.
    for ns, label, tcp in (("ml-c1", "1. vanished host", "unresponsive"), ("ml-c1b", "1. vanished host #2", "unresponsive"),
                           ("ml-c1c", "1. vanished host #3", "unresponsive"), ("ml-c2", "2. hung app", "responsive")):
        e = ev.wait(20, kind="closed", client=con[ns]["endpoint"])
        check("%s: closed broker_close_keepalive, client_tcp %s, expired" % (label, tcp),
              e and e[0]["reason"] == "broker_close_keepalive" and e[0]["client_tcp"] == tcp and e[0]["expired"]
              and e[0]["closed_by"] == "broker", brief(e and e[0]))
    e = ev.wait(20, kind="closed", client=con["ml-c6"]["endpoint"])
    check("6. broker enforced the server keepalive: closed broker_close_keepalive",
          e and e[0]["reason"] == "broker_close_keepalive" and e[0]["expired"], brief(e and e[0]))
    try:
        r6 = cl["ml-c6"].recv(10)
        log("6. client saw broker DISCONNECT reason %s" % r6.get("disconnect_reason"))
    except LabError as x:
        log("6. wait_eof: %s" % x)

    # 4. keepalive 0, vanished: never expires, becomes no_keepalive_idle after IDLE s.
    zero_ep = con["ml-c4"]["endpoint"]
    idle_sampler.join(IDLE + 12)
    idle_at = idle_seen.get("at")
    check("4. mqttlive_connections{state=\"no_keepalive_idle\"} becomes 1 after the %d s threshold" % IDLE,
          idle_at and IDLE - 0.3 <= idle_at - t_zero <= IDLE + 1.0,
          "after %s s" % (None if not idle_at else round(idle_at - t_zero, 2)))
    conns = json.loads(scrape(MAIN_WEB, "/connections"))["connections"]
    check("4. /connections lists the keepalive-0 client as no_keepalive_idle",
          any(c["client"] == zero_ep and c["state"] == "no_keepalive_idle" for c in conns), conns)
    check("4. no keepalive_expired and no close for the keepalive-0 client",
          not ev.find(kind="keepalive_expired", client=zero_ep) and not ev.find(kind="closed", client=zero_ep),
          ev.find(client=zero_ep))
    ss = run(["ip", "netns", "exec", BR_NS, "ss", "-Htn", "state", "established", "dst", host_ip("ml-c4")]).stdout
    check("4. the broker never noticed: its socket to the vanished keepalive-0 client is still established",
          ":%d" % con["ml-c4"]["local_port"] in ss, ss)

    # Alerts of phase A
    vanish_at = wait_for(lambda: firing(A_VANISH, job="mqttlive") and time.time(), 45, 0.5)
    check("alert %s fires after the vanished hosts / FIN / RST closes" % A_VANISH, vanish_at,
          active_alerts())
    # Gauges refresh every 200 ms: give the last keepalive close a moment to show.
    only_zero = wait_for(lambda: (lambda m: metric(m, "mqttlive_connections", state="expired") == 0
                                  and metric(m, "mqttlive_connections", state="no_keepalive_idle") == 1)(scrape()),
                         5, 0.1)
    check("4. now the keepalive-0 client is the only half-open connection", only_zero,
          [l for l in scrape().splitlines() if l.startswith("mqttlive_connections{")])
    check("4. Prometheus sees mqttlive_connections{state=\"no_keepalive_idle\"} == 1",
          wait_for(lambda: prom_scalar('mqttlive_connections{job="mqttlive",state="no_keepalive_idle"}') == 1, 5, 0.5))
    half = wait_for(lambda: [a for a in firing(A_HALF, job="mqttlive") if float(a["value"]) == 1.0], 20, 0.5)
    check("alert %s fires for the vanished keepalive-0 client (value 1)" % A_HALF,
          half and float(half[0]["value"]) == 1.0, half or active_alerts())
    # Close it from the broker side: destroy the broker's socket (kernel sends RST).
    run(["ip", "netns", "exec", BR_NS, "ss", "-K", "-t", "dst", host_ip("ml-c4"), "dport", "=",
         str(con["ml-c4"]["local_port"])])
    e = ev.wait(5, kind="closed", client=zero_ep)
    check("4. killing the broker's socket closes it: closed broker_close_other by broker (RST)",
          e and e[0]["reason"] == "broker_close_other" and e[0]["closed_by"] == "broker" and e[0]["rst"],
          brief(e and e[0]))
    if e:  # not asserted (reported): the host has been gone for ~20 s, yet ...
        log("NOTE keepalive-0 vanished client, broker RST close: client_tcp=%s (host unreachable since %.1f s)"
            % (e[0]["client_tcp"], e[0]["ts"] - t_zero))
    resolved = wait_for(lambda: not [a for a in active_alerts() if a["labels"]["alertname"] == A_HALF], 15, 0.5)
    check("alert %s resolves after that connection is closed" % A_HALF, resolved, active_alerts())

    aedes_run.join(30)
    check("aedes scenarios A1-A4 ran to completion", not aedes_run.is_alive() and not aedes_err, aedes_err)

    # ================================================ phase B: takeovers, drops
    log("phase B: takeover flapping (3.1.1 x5, 5.0 x2), capture drops")
    check("alert %s never fired before the flapping (phase A reconnects no id 5 times)" % A_FLAP,
          not mon.ever(A_FLAP), mon.ever(A_FLAP))
    a, b = ClientProc("ml-c5a"), ClientProc("ml-c5b")
    flips = []
    holder = a
    r = a.connect("f", "flapper", 30)
    flips.append((a, r["endpoint"]))
    for i in range(5):
        nxt = b if holder is a else a
        r = nxt.connect("f", "flapper", 30)
        holder.call(cmd="wait_eof", name="f", timeout=10)
        flips.append((nxt, r["endpoint"]))
        holder = nxt
        time.sleep(0.3)
    v5 = []
    r = a.connect("g", "flapper-v5", 30, level=5)
    v5.append(r["endpoint"])
    reasons5 = []
    holder = a
    for i in range(2):
        nxt = b if holder is a else a
        r = nxt.connect("g", "flapper-v5", 30, level=5)
        reasons5.append(holder.call(cmd="wait_eof", name="g", timeout=10)["disconnect_reason"])
        v5.append(r["endpoint"])
        holder = nxt
    eps = [ep for _, ep in flips]
    for i in range(1, len(eps)):
        t = ev.wait(3, kind="takeover", client=eps[i])
        check("5. takeover %d (3.1.1) names the new %s and the previous %s" % (i, eps[i], eps[i - 1]),
              t and t[0]["client_id"] == "flapper" and t[0]["previous_client"] == eps[i - 1], brief(t and t[0]))
        c = ev.wait(5, kind="closed", client=eps[i - 1])
        check("5. the taken-over 3.1.1 connection %s: closed broker_close_takeover (plain FIN)" % eps[i - 1],
              c and c[0]["reason"] == "broker_close_takeover" and c[0]["closed_by"] == "broker" and not c[0]["rst"],
              brief(c and c[0]))
    # Mosquitto 2.0.11 closes the old MQTT 5 connection with a plain FIN (no DISCONNECT
    # 0x8E; later versions send one). Either way the verdict must be broker_close_takeover.
    log("5. old v5 connections saw broker DISCONNECT reason codes %s (None = plain FIN)" % reasons5)
    check("5. old v5 connections were closed by the broker (DISCONNECT 0x8E or plain FIN)",
          all(r in (None, 0x8E) for r in reasons5), reasons5)
    for i in range(1, len(v5)):
        t = ev.wait(3, kind="takeover", client=v5[i])
        c = ev.wait(5, kind="closed", client=v5[i - 1])
        check("5. v5 takeover %d: takeover event + broker_close_takeover" % i,
              t and t[0]["previous_client"] == v5[i - 1] and c and c[0]["reason"] == "broker_close_takeover",
              [brief(t and t[0]), brief(c and c[0])])
    check("alert %s fires during flapping" % A_TAKEOVER,
          wait_for(lambda: firing(A_TAKEOVER, job="mqttlive"), 30, 0.5), active_alerts())
    # The detector: "flapper" connected 6 times, "flapper-v5" 3 times (below the 5 that count).
    top = wait_for(lambda: json.loads(scrape(MAIN_WEB, "/api/summary"))["top_flapping"], 5, 0.2) or []
    check("5. /api/summary top_flapping: flapper with 6 connects (flapping) first, flapper-v5 with 3",
          [(f["client_id"], f["connects"], f["flapping"]) for f in top[:2]]
          == [("flapper", 6, True), ("flapper-v5", 3, False)], top)
    check("5. mqttlive_flapping_clients == 1", wait_for(
        lambda: metric(scrape(), "mqttlive_flapping_clients") == 1, 5, 0.2), metric(scrape(), "mqttlive_flapping_clients"))
    check("alert %s fires for the flapping client id" % A_FLAP,
          wait_for(lambda: firing(A_FLAP, job="mqttlive"), 30, 0.5), active_alerts())
    holder.call(cmd="disconnect", name="g")
    flips[-1][0].call(cmd="disconnect", name="f")

    # Capture drops: freeze the 1 MiB-buffer instance, push 8 MB through the bridge.
    burst = ClientProc("ml-c9")
    burst.connect("d", "burst-1", 30)
    os.kill(live_drops.pid, signal.SIGSTOP)
    try:
        burst.call(cmd="burst", name="d", bytes=8 << 20, chunk=16384, timeout=30)
        burst.call(cmd="ping", name="d")
        time.sleep(0.3)
    finally:
        os.kill(live_drops.pid, signal.SIGCONT)
    burst.call(cmd="disconnect", name="d")
    dropped = wait_for(lambda: metric(scrape(DROPS_WEB), "mqttlive_capture_dropped_packets_total"), 10, 0.2)
    check("capture drops provoked on the 1 MiB-buffer instance", dropped and dropped > 0, dropped)
    main_dropped = metric(scrape(), "mqttlive_capture_dropped_packets_total")
    check("main mqttlive dropped nothing", main_dropped == 0, main_dropped)
    drop_alert = wait_for(lambda: firing(A_DROP, job="mqttlive_drops"), 25, 0.5)
    check("alert %s fires for the instance that dropped" % A_DROP, drop_alert, active_alerts())

    # ================================================ phase C: reconnect storm
    log("phase C: reconnect storm of %d clients" % STORM)
    check("alert %s never fired before the storm" % A_STORM, not mon.ever(A_STORM), mon.ever(A_STORM))
    storm = ClientProc("ml-c8")
    m0 = scrape()
    before = metric(m0, "mqttlive_connections_opened_total")
    graceful_before = metric(m0, "mqttlive_connections_closed_total", reason="graceful_disconnect")
    n_conn_before = len(ev.find(kind="connected"))
    rs = storm.call(cmd="storm", count=STORM, threads=8, host=BROKER_IP, port=PORT_A, prefix="storm",
                    keepalive=30, timeout=120)
    check("8. storm: every client connected", len(rs["local_ports"]) == STORM and rs["error_count"] == 0,
          rs["errors"])
    storm_eps = {"%s:%d" % (storm.ip, p) for p in rs["local_ports"]}
    is_storm = lambda e: e.get("client") in storm_eps  # noqa: E731
    wait_for(lambda: len(ev.find(kind="closed", pred=is_storm)) >= len(storm_eps), 15, 0.2)
    sc, sx = ev.find(kind="connected", pred=is_storm), ev.find(kind="closed", pred=is_storm)
    check("8. storm: %d connected events and %d closed events" % (len(sc), len(sx)),
          len(sc) == len(storm_eps) == len(sx) and len({e["client"] for e in sx}) == len(storm_eps),
          "connected %d closed %d ports %d" % (len(sc), len(sx), len(storm_eps)))
    check("8. storm: every close is graceful_disconnect",
          all(e["reason"] == "graceful_disconnect" for e in sx),
          sorted({e["reason"] for e in sx}))
    after = wait_for(lambda: (lambda v: v if v >= before + STORM else None)(
        metric(scrape(), "mqttlive_connections_opened_total")), 5, 0.2)
    after = after or metric(scrape(), "mqttlive_connections_opened_total")
    check("8. mqttlive_connections_opened_total rose by exactly %d" % STORM, after - before == STORM,
          "%s -> %s" % (before, after))
    check("8. no other connection appeared during the storm", len(ev.find(kind="connected")) - n_conn_before == STORM)
    graceful_after = metric(scrape(), "mqttlive_connections_closed_total", reason="graceful_disconnect")
    check("8. mqttlive_connections_closed_total{reason=\"graceful_disconnect\"} rose by exactly %d" % STORM,
          graceful_after - graceful_before == STORM, "%s -> %s" % (graceful_before, graceful_after))
    storm_alert = wait_for(lambda: firing(A_STORM, job="mqttlive"), 25, 0.5)
    check("alert %s fires during the storm" % A_STORM, storm_alert, active_alerts())
    check("8. storm: Prometheus saw mqttlive_reconnect_storm == 1 (the detector's gauge the alert reads)",
          prom_scalar('max_over_time(mqttlive_reconnect_storm{job="mqttlive"}[2m])') == 1)

    # ================================================ phase D: broker restart, midstream
    log("phase D: midstream pickup, broker restart")
    m_ep = mid["endpoint"]
    e = ev.find(kind="midstream", client=m_ep)
    check("7. client connected before mqttlive started: midstream event",
          e and e[0]["midstream"] is True and e[0]["client_id"] is None, ev.find(client=m_ep))
    e = ev.find(kind="keepalive_learned", client=m_ep)
    check("7. it pings every 2 s: keepalive_learned keepalive 2 keepalive_source inferred",
          e and e[0]["keepalive"] == 2 and e[0]["keepalive_source"] == "inferred", ev.find(client=m_ep))
    rc = ClientProc("ml-c7")
    rcs = [rc.connect("r%d" % i, "restart-%d" % i, 10) for i in range(2)]
    for i in range(2):
        rc.call(cmd="pinger", name="r%d" % i, interval=1.0, reconnect=True)
    time.sleep(1.2)
    for i in range(2):
        rc.call(cmd="pingnow", name="r%d" % i)
    midc.call(cmd="pingnow", name="m")
    t_kill = time.time()
    rc_mosq = stop(mosq_a, signal.SIGTERM, 10)
    log("mosquitto A stopped (rc %s) in %.2f s; starting it again" % (rc_mosq, time.time() - t_kill))
    mosq_a = start_mosquitto("mosquitto-a", conf_a, PORT_A)
    old_eps = [m_ep] + [r["endpoint"] for r in rcs]
    for ep in old_eps:
        c = ev.wait(10, kind="closed", client=ep)
        check("7. broker restart: %s closed broker_close_other, closed_by broker" % ep,
              c and c[0]["reason"] == "broker_close_other" and c[0]["closed_by"] == "broker", brief(c and c[0]))

    def reconnected(proc, name):
        st = proc.call(cmd="status", name=name)
        return st["history"]["reconnects"][0] if st["history"]["reconnects"] else None
    for proc, name, cid in [(midc, "m", "restart-mid"), (rc, "r0", "restart-0"), (rc, "r1", "restart-1")]:
        r = wait_for(lambda: reconnected(proc, name), 15, 0.2)
        ep = r and "%s:%d" % (proc.ip, r["local_port"])
        c = r and ev.wait(5, kind="connected", client=ep)
        check("7. %s reconnected after the restart: connected event (not midstream)" % cid,
              c and c[0]["client_id"] == cid and not c[0]["midstream"], r)

    # ================================================ phase E: a middlebox idle timeout
    log("phase E: %d connections reset without DISCONNECT at the same age (%d s), like an idle timeout"
        % (LB_CUTS, LB_AGE))
    check("alert %s never fired before the idle-timeout cuts" % A_LB, not mon.ever(A_LB), mon.ever(A_LB))
    lb = ClientProc("ml-c14")
    cuts = [(lb.connect("i%d" % i, "idle-cut-%d" % i, 30), time.time()) for i in range(LB_CUTS)]
    for i, (_, t) in enumerate(cuts):
        time.sleep(max(0.0, t + LB_AGE - time.time()))
        lb.call(cmd="abort", name="i%d" % i)
    fp = wait_for(lambda: metric(scrape(), "mqttlive_idle_timeout_fingerprint_seconds") or None, 10, 0.2)
    check("E. mqttlive_idle_timeout_fingerprint_seconds is the age of the cuts (%d s, +-1)" % LB_AGE,
          fp and abs(fp - LB_AGE) <= 1.0, fp)
    check("alert %s fires after the cuts" % A_LB, wait_for(lambda: firing(A_LB, job="mqttlive"), 30, 0.5),
          active_alerts())

    # ---- alerts that must never have fired, and a final look
    time.sleep(2)
    silent_names = [n for n in alert_names if n not in (A_HALF, A_VANISH, A_TAKEOVER, A_STORM, A_DROP, A_FLAP, A_LB)]
    for n in silent_names:
        check("alert %s never fired" % n, not mon.ever(n, "firing"),
              [(k, round(mon.seen[k] - T0, 1)) for k in mon.ever(n)])
    log("diagnostics: failed scrapes of mqttlive %s, slowest scrape %s s" % (
        prom_scalar('count_over_time((up{job="mqttlive"} == 0)[10m:1s])'),
        prom_scalar('max_over_time(scrape_duration_seconds{job="mqttlive"}[10m])')))
    check("alert %s never fired for the main instance" % A_DROP, not mon.ever(A_DROP, job="mqttlive"),
          mon.ever(A_DROP))
    check("alert monitor polled without errors", mon.errors == 0, mon.errors)
    check("every events line is valid JSON", not ev.bad, ev.bad[:3])
    e = ev.find(kind="keepalive_expired")
    expected_exp = {con[ns]["endpoint"] for ns in ("ml-c1", "ml-c1b", "ml-c1c", "ml-c2", "ml-c6")}
    expected_exp |= set(aedes_eps.values())
    check("keepalive_expired only for the silent clients", {x["client"] for x in e} == expected_exp,
          [brief(x) for x in e])
    # Metrics agree with the event stream, type by type.
    time.sleep(0.5)
    m = scrape()
    counts = {}
    for x in ev.find():
        counts[x["event"]] = counts.get(x["event"], 0) + 1
    mismatch = {k: (counts.get(k, 0), metric(m, "mqttlive_events_total", event=k))
                for k in ("connected", "connect_refused", "keepalive_expired", "takeover", "closed", "midstream",
                          "keepalive_learned")
                if metric(m, "mqttlive_events_total", event=k) != counts.get(k, 0)}
    check("mqttlive_events_total{event} equals the lines in the events file, for every event type", not mismatch,
          mismatch)
    check("mqttlive_keepalive_expirations_total and mqttlive_takeovers_total match the events",
          metric(m, "mqttlive_keepalive_expirations_total") == counts.get("keepalive_expired", 0)
          and metric(m, "mqttlive_takeovers_total") == counts.get("takeover", 0),
          (metric(m, "mqttlive_keepalive_expirations_total"), metric(m, "mqttlive_takeovers_total"), counts))
    closed_metric = metric(m, "mqttlive_connections_closed_total")
    check("mqttlive_connections_closed_total equals the closed events", closed_metric == counts.get("closed", 0),
          (closed_metric, counts.get("closed")))
    # Not asserted (reported): TCP connection attempts the broker refused while it was
    # down (SYN answered by RST, never established) show up as `closed` events.
    refused = ev.find(kind="closed", pred=lambda x: x["keepalive"] is None and not x["midstream"]
                      and x["client_tcp"] == "unknown" and x["rst"] and x["closed_by"] == "broker")
    for x in refused:
        log("NOTE refused SYN reported as a closed connection: %s" % json.dumps(brief(x)))
    mon.stop = True
    ev.stop = True
    rcode = stop(live, signal.SIGTERM, 10)
    check("mqttlive exits 0 on SIGTERM", rcode == 0, rcode)


def cleanup():
    for name, p in reversed(procs):
        try:
            stop(p, signal.SIGTERM if name in ("prometheus", "mqttlive", "mqttlive-drops") else signal.SIGKILL, 5)
        except Exception:  # noqa: BLE001
            pass
    remove_namespaces()
    if _pool is not None:
        _pool.shutdown(wait=False)


def dump_logs():
    for name in ("mqttlive.log", "mosquitto-a.log", "mosquitto-b.log", "aedes.log", "prometheus.log", "events.jsonl"):
        path = os.path.join(tmp, name)
        if os.path.exists(path):
            print("---- %s (tail)" % name)
            print(open(path, errors="replace").read()[-6000:])


def _on_signal(sig, _frame):
    raise SystemExit(128 + sig)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    outcome = None
    try:
        outcome = main()
    except Exception as x:  # noqa: BLE001
        import traceback
        traceback.print_exc()
        check("lab ran to completion", False, "%s: %s" % (type(x).__name__, x))
    finally:
        cleanup()
    left = list_our_ns()
    if outcome != "skip":
        check("cleanup left no namespace behind", not left, left)
    failed = sum(1 for _, ok in results if not ok)
    if failed or os.environ.get("FAULT_LAB_KEEP_LOGS"):
        if failed:
            dump_logs()
        print("logs kept in " + tmp)
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    print("runtime %.1f s" % (time.time() - T0))
    if outcome == "skip":
        print("0 passed, 0 failed, 1 skipped")
        sys.exit(0)
    passed = len(results) - failed
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)
