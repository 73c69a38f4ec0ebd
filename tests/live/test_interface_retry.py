#!/usr/bin/env python3
"""An interface that goes away must not kill mqttlive: the capture is retried
with backoff, counted in mqttlive_capture_restarts_total, and resumes when the
interface is back. Uses a veth pair of its own. Usage: SCRIPT BINARY"""
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

BIN = sys.argv[1]
IFACE = "mlretry%d" % (os.getpid() % 1000)
results = []


def check(name, cond, detail=""):
    results.append(bool(cond))
    print(("ok   " if cond else "FAIL ") + name + ("" if cond else "  -- " + str(detail)), flush=True)


def sh(*args):
    return subprocess.run(args, capture_output=True, text=True)


def scrape(port, path="/metrics"):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=3) as r:
            return r.read().decode()
    except Exception:
        return None


def restarts(port):
    text = scrape(port) or ""
    for line in text.splitlines():
        if line.startswith('mqttlive_capture_restarts_total{interface="%s"}' % IFACE):
            return float(line.split()[-1])
    return None


def wait_for(pred, timeout):
    end = time.time() + timeout
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.2)
    return pred()


def main():
    if sh("ip", "link", "add", IFACE, "type", "veth", "peer", "name", IFACE + "p").returncode != 0:
        if os.environ.get("CI") == "true":
            print("cannot create a veth pair in CI")
            print("0 passed, 1 failed")
            return 1
        print("SKIP: cannot create a veth pair here (need root / CAP_NET_ADMIN)")
        return 0
    sh("ip", "link", "set", IFACE, "up")
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    web = s.getsockname()[1]
    s.close()
    proc = subprocess.Popen([BIN, "-i", IFACE, "--broker-port", "1883", "--web.listen-address",
                             "127.0.0.1:%d" % web], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        check("starts on the veth interface", wait_for(lambda: scrape(web, "/healthz"), 10))
        sh("ip", "link", "del", IFACE)
        time.sleep(2)
        check("survives the interface going away", proc.poll() is None and scrape(web, "/healthz") == "ok")
        sh("ip", "link", "add", IFACE, "type", "veth", "peer", "name", IFACE + "p")
        sh("ip", "link", "set", IFACE, "up")
        check("capture reopened and counted", wait_for(lambda: (restarts(web) or 0) >= 1, 40), restarts(web))
        proc.send_signal(signal.SIGTERM)
        check("SIGTERM exits 0", proc.wait(10) == 0)
    finally:
        if proc.poll() is None:
            proc.kill()
        err = proc.stderr.read() if proc.stderr else ""
        sh("ip", "link", "del", IFACE)
        if not all(results):
            print(err[-3000:])
    print("%d passed, %d failed" % (sum(results), len(results) - sum(results)))
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
