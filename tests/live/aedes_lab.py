"""Plumbing of the live transport tests against aedes (tests/e2e/aedes): the
broker, MQTT.js clients (tests/e2e/aedes/client.js) driven over stdin, an
event-file tail that stamps when each line appeared, metrics scraping.
Missing node, npm modules or haproxy is a failure, never a skip:
scripts/setup.sh installs them."""
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request

from live_common import try_call, wait_for, wait_port

HERE = os.path.dirname(os.path.abspath(__file__))
AEDES_DIR = os.path.join(os.path.dirname(HERE), "e2e", "aedes")


def prerequisites(live, tools):
    """False (with a FAIL line) when a tool or the npm modules are missing."""
    ok = True
    for tool in tools:
        ok &= bool(live.check("prerequisite: %s installed" % tool, shutil.which(tool),
                              "'%s' not found: run scripts/setup.sh" % tool))
    for mod in ("aedes", "ws", "aedes-protocol-decoder", "mqtt"):
        ok &= bool(live.check("prerequisite: npm module %s" % mod,
                              os.path.isdir(os.path.join(AEDES_DIR, "node_modules", mod)),
                              "missing in %s: run scripts/setup.sh (npm ci)" % AEDES_DIR))
    return ok


def start_aedes(live, port, ws_port=None, proxy_port=None):
    argv = ["node", os.path.join(AEDES_DIR, "broker.js"), "127.0.0.1", str(port)]
    if ws_port:
        argv += ["--ws", str(ws_port)]
    if proxy_port:
        argv += ["--proxy-port", str(proxy_port)]
    live.start("aedes", argv)
    return all(wait_port(p, 15) for p in (port, ws_port, proxy_port) if p)


def aedes_log(live):
    try:
        with open(live.path("aedes.log")) as f:
            return f.read()
    except OSError:
        return ""


class EventTail:
    """Reads the event file every 20 ms in a thread; each event gets `_arrival`,
    the wall-clock time its line was first seen."""

    def __init__(self, path):
        self.path, self.events, self.pos = path, [], 0
        self.lock = threading.Lock()
        self.stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        buf = ""
        while not self.stop:
            try:
                with open(self.path) as f:
                    f.seek(self.pos)
                    data = f.read()
                    self.pos = f.tell()
            except FileNotFoundError:
                data = ""
            now = time.time()
            buf += data
            while "\n" in buf:
                line, buf = buf.split("\n", 1)
                if line.strip():
                    e = json.loads(line)
                    e["_arrival"] = now
                    with self.lock:
                        self.events.append(e)
            time.sleep(0.02)

    def find(self, kind=None, client_id=None, **fields):
        with self.lock:
            evs = list(self.events)
        return [e for e in evs if (kind is None or e["event"] == kind)
                and (client_id is None or e["client_id"] == client_id)
                and all(e.get(k) == v for k, v in fields.items())]

    def wait(self, timeout, kind=None, client_id=None, **fields):
        return wait_for(lambda: self.find(kind, client_id, **fields), timeout, 0.02)

    def close(self):
        self.stop = True
        self.thread.join(2)


class NodeClient:
    """One MQTT.js client process; its stdout lines are collected as dicts."""

    def __init__(self, live, name, args):
        self.name = name
        log = open(live.path("client-%s.err" % name), "w")
        live.logs.append(live.path("client-%s.err" % name))
        self.proc = subprocess.Popen(["node", os.path.join(AEDES_DIR, "client.js")] + args,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True)
        live.procs.append(self.proc)
        self.lines = []
        self.lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            try:
                d = json.loads(line)
            except ValueError:
                continue
            with self.lock:
                self.lines.append(d)

    def seen(self, ev, **fields):
        with self.lock:
            return [d for d in self.lines if d["ev"] == ev and all(d.get(k) == v for k, v in fields.items())]

    def wait(self, ev, timeout=10, **fields):
        return wait_for(lambda: self.seen(ev, **fields), timeout, 0.02)

    def connected(self, timeout=10):
        c = self.wait("connected", timeout)
        if not c:
            raise RuntimeError("client %s did not connect: %r" % (self.name, self.lines))
        return c[0]

    def command(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def last_send(self):
        s = self.seen("send")
        return s[-1]["t"] if s else None

    def stop(self):
        """SIGSTOP: a hung application whose kernel still acknowledges."""
        os.kill(self.proc.pid, signal.SIGSTOP)

    def kill(self):
        """SIGKILL: the kernel closes the socket with a FIN, no DISCONNECT."""
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(5)

    def reap(self):
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGCONT)
                os.kill(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(5)


def scrape(web_port):
    return try_call(lambda: urllib.request.urlopen("http://127.0.0.1:%d/metrics" % web_port, timeout=5)
                    .read().decode()) or ""


def metric(text, key):
    for line in text.splitlines():
        if line.startswith(key + " "):
            return float(line.split()[-1])
    return None


def nonzero(text, prefix):
    return [l for l in text.splitlines() if l.startswith(prefix) and not l.endswith(" 0")]


def note(msg):
    print("NOTE " + msg, flush=True)
    sys.stdout.flush()


def open_states(text):
    return [l for l in text.splitlines() if l.startswith("mqttlive_connections{") and not l.endswith(" 0")]


def settled_metrics(web_port, want, extra_closed, timeout=4):
    """Scrapes until the counters in `want` (plus the closes of connections outside the
    test's cases, `extra_closed` by reason) match and no connection is left open: the
    gauges are refreshed periodically, not per packet. Returns (text, got, want)."""
    want = dict(want)
    for reason, n in extra_closed.items():
        key = 'mqttlive_connections_closed_total{reason="%s"}' % reason
        want[key] = want.get(key, 0) + n
    state = {}

    def settled():
        m = scrape(web_port)
        state["m"], state["got"] = m, {k: metric(m, k) for k in want}
        return state["got"] == want and not open_states(m)
    wait_for(settled, timeout, 0.2)
    return state["m"], state["got"], want


def cleanup_on_signal(live, clients):
    """SIGTERM/SIGINT (ctest's timeout, Ctrl-C): end every process the test started
    (stopped clients included) before exiting, so no broker, proxy or client is left."""
    def handler(signum, frame):
        for c in clients:
            try:
                c.reap()
            except Exception:
                pass
        for p in live.procs:
            if p.poll() is None:
                p.kill()
                try:
                    p.wait(2)
                except subprocess.TimeoutExpired:
                    pass
        print("interrupted by signal %d: processes ended" % signum, flush=True)
        os._exit(1)
    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
