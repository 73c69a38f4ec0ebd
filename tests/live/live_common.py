"""Shared plumbing of the live tests that start their own Mosquitto and
mqttlive on loopback: ports, checks, waiting, the event file, teardown."""
import json
import os
import socket
import subprocess
import tempfile
import time


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_for(pred, timeout, step=0.1):
    end = time.time() + timeout
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


def wait_port(port, timeout=10):
    def up():
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            return False
    return wait_for(up, timeout)


class Live:
    """One test run: a temp dir, the processes started, the checks made."""

    def __init__(self, prefix):
        self.tmp = tempfile.mkdtemp(prefix=prefix)
        self.procs = []
        self.results = []
        self.events_path = os.path.join(self.tmp, "events.jsonl")
        self.logs = []

    def path(self, name):
        return os.path.join(self.tmp, name)

    def start(self, name, argv):
        log = self.path(name + ".log")
        self.logs.append(log)
        p = subprocess.Popen(argv, stdout=open(log, "w"), stderr=subprocess.STDOUT)
        self.procs.append(p)
        return p

    def start_mqttlive(self, binary, yaml_text, web_port):
        cfg = self.path("mqttlive.yaml")
        with open(cfg, "w") as f:
            f.write(yaml_text)
        log = self.path("mqttlive.log")
        self.logs.append(log)
        p = subprocess.Popen([binary, "--config.file", cfg, "--web.listen-address", "127.0.0.1:%d" % web_port,
                              "--events.output", self.events_path], stderr=open(log, "w"))
        self.procs.append(p)
        return p

    def check(self, name, cond, detail=""):
        self.results.append((name, bool(cond)))
        print(("ok   " if cond else "FAIL ") + name + ("" if cond else "  -- " + str(detail)), flush=True)
        return cond

    def events(self):
        try:
            with open(self.events_path) as f:
                return [json.loads(line) for line in f if line.strip()]
        except FileNotFoundError:
            return []

    def find(self, kind, client_port=None):
        return [e for e in self.events() if e["event"] == kind
                and (client_port is None or (e["client"] or "").endswith(":%d" % client_port))]

    def wait_event(self, kind, client_port, timeout):
        return wait_for(lambda: self.find(kind, client_port), timeout)

    def finish(self):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        if any(not ok for _, ok in self.results):
            for log in self.logs + [self.events_path]:
                print("---- " + log)
                try:
                    print(open(log).read()[-4000:])
                except OSError as e:
                    print(e)
        passed = sum(1 for _, ok in self.results if ok)
        failed = len(self.results) - passed
        print("%d passed, %d failed" % (passed, failed))
        return 0 if failed == 0 and passed > 0 else 1


def try_call(fn):
    try:
        return fn()
    except Exception:
        return None
