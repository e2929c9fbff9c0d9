"""Probe latencies under the floods of issue 17 (figures for `make stress`).

Each flood runs for STRESS_SECONDS while a prober GETs /healthz on a fresh
connection every 50 ms; the figures line gives the probes' p50/p99/max. The
assertions are outcomes only (every probe answered 200, the flood's own
requests got the answer they should), never speeds:
  - 24 clients sending 1 MB bodies that fail validation at their last input
    (parsing runs on the parse threads, below the HTTP thread's priority;
    the same run measures parsing on the HTTP thread and parse threads at
    the HTTP thread's priority, the two designs before);
  - 20 half-open connections a second (a request cut short, then close);
  - 1000 slowloris sockets, probing the health listener and the main port
    (where the connections waiting longest for their headers are evicted
    to make room)."""
import json
import os
import re
import resource
import socket
import subprocess
import sys
import threading
import time

from stresslib import (CLASSIFIER_DIR, STRESS_SECONDS, Load, percentile, report, request)

C = "/v1/models/classifier/classify"
ONE_MODEL = [{"name": "classifier", "path": CLASSIFIER_DIR}]


PROBER = r"""
import http.client, json, sys, threading, time
port, every, path = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
stop = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
ms, failures = [], []
while not stop.is_set():
    t0 = time.monotonic()
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        c.request("GET", path)
        r = c.getresponse()
        r.read()
        c.close()
        (ms if r.status == 200 else failures).append(
            (time.monotonic() - t0) * 1000 if r.status == 200 else r.status)
    except OSError as e:
        failures.append(repr(e))
    time.sleep(max(0.0, every - (time.monotonic() - t0)))
print(json.dumps({"ms": ms, "failures": failures}))
"""


class Prober:
    """GET `path` every `every` seconds on a fresh connection, from a process
    of its own (so that the load's client threads do not delay it); the
    latencies in ms."""

    def __init__(self, port, every=0.05, path="/healthz"):
        self.proc = subprocess.Popen([sys.executable, "-c", PROBER, str(port), str(every), path],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def start(self):
        return self

    def stop(self):
        out, _ = self.proc.communicate("", timeout=600)
        res = json.loads(out)
        ms = res["ms"]
        assert not res["failures"], res["failures"][:3]
        assert ms, "no probe was answered"
        return dict(probes=len(ms), p50_ms=round(percentile(ms, 50), 2),
                    p99_ms=round(percentile(ms, 99), 2), max_ms=round(max(ms), 2))


def failing_megabyte():
    """~1 MB of text inputs whose last input is not a string or object."""
    text = " ".join(["a wonderful moving film with brilliant acting"] * 20)
    n = (1 << 20) // (len(text) + 3)
    return json.dumps({"inputs": [text] * min(n, 1000) + [5]}).encode()


def flood_with_failing_bodies(start_daemon, parse_threads, parse_threads_nice=10):
    d = start_daemon(models=ONE_MODEL, server={"max_body_bytes": 2 << 20,
                                               "parse_threads": parse_threads,
                                               "parse_threads_nice": parse_threads_nice})
    body = failing_megabyte()
    assert len(body) > 900_000
    r = request(d.port, "POST", C, body)
    assert r.status == 400, r
    load = Load(d.port, lambda i, k: ("bad", "POST", C, body, None), 24).start()
    prober = Prober(d.port).start()
    time.sleep(STRESS_SECONDS)
    figs = prober.stop()
    results = load.stop()
    statuses = {res.status for (_, _, _, res) in results}
    assert statuses == {400}, statuses
    d.stop()
    return dict(bodies=len(results), **figs)


def test_healthz_while_24_clients_send_failing_megabyte_bodies(start_daemon):
    # The baselines in the same run: the same flood with parsing on the HTTP
    # thread, and on parse threads at the HTTP thread's priority.
    inline = flood_with_failing_bodies(start_daemon, 0)
    same_priority = flood_with_failing_bodies(start_daemon, 2, 0)
    pooled = flood_with_failing_bodies(start_daemon, 2)
    load = " (load average %.1f)" % os.getloadavg()[0]
    report("healthz, 24 clients x 1 MB failing bodies, parse_threads=0 (HTTP thread)" + load,
           **inline)
    report("healthz, 24 clients x 1 MB failing bodies, parse_threads=2, parse_threads_nice=0"
           + load, **same_priority)
    report("healthz, 24 clients x 1 MB failing bodies, parse_threads=2, parse_threads_nice=10"
           + load, **pooled)


def test_healthz_while_half_open_connections_flood(start_daemon):
    d = start_daemon(models=ONE_MODEL)
    stop = threading.Event()
    sent = [0]

    def flood():
        while not stop.is_set():
            s = socket.create_connection(("127.0.0.1", d.port))
            s.sendall(b"POST " + C.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
            s.close()
            sent[0] += 1
            time.sleep(0.05)

    t = threading.Thread(target=flood, daemon=True)
    t.start()
    prober = Prober(d.port).start()
    time.sleep(max(STRESS_SECONDS, 20))  # the issue saw /healthz stop after 16 s
    figs = prober.stop()
    stop.set()
    t.join(30)
    report("healthz, 20 half-open connections/s", half_open=sent[0], **figs)


def test_probes_while_1000_slowloris_sockets_are_held(start_daemon):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(4096, hard)), hard))
    d = start_daemon(models=ONE_MODEL, server={"health_listen": "127.0.0.1:0"})
    hp = int(re.search(r"health listener \(open routes only\) on http://127\.0\.0\.1:(\d+)",
                       d.log()).group(1))
    stop = threading.Event()
    held = []

    def opened():
        s = socket.create_connection(("127.0.0.1", d.port), timeout=5)
        s.setblocking(False)
        try:
            s.send(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        except OSError:
            pass
        return s

    def slowloris():
        # 1000 sockets trickling their headers, each re-opened once it is cut.
        while not stop.is_set():
            while len(held) < 1000 and not stop.is_set():
                try:
                    held.append(opened())
                except OSError:
                    break
            for i, s in enumerate(list(held)):
                try:
                    if s.recv(1) == b"":
                        raise ConnectionResetError
                except BlockingIOError:
                    try:
                        s.send(b"X")
                    except OSError:
                        pass
                    continue
                except OSError:
                    pass
                s.close()
                held.remove(s)
            time.sleep(1)

    t = threading.Thread(target=slowloris, daemon=True)
    t.start()
    time.sleep(2)
    health = Prober(hp).start()
    main = Prober(d.port, every=0.1).start()
    time.sleep(max(STRESS_SECONDS, 12))
    health_figs = health.stop()
    main_figs = main.stop()
    stop.set()
    t.join(30)
    for s in held:
        s.close()
    scrape = request(hp, "GET", "/metrics")
    evicted = int(re.search(rb"^fastformerd_http_connections_evicted_total (\d+)", scrape.body,
                            re.M).group(1))
    report("healthz on server.health_listen, 1000 slowloris sockets", **health_figs)
    report("healthz on the main port, 1000 slowloris sockets (header_timeout_s 5)",
           evicted=evicted, **main_figs)
