"""The access log: one line per response, written in batches (server/log.h).
Every line arrives, in the order the responses were logged, around the
daemon's other lines: with traffic, when traffic stops (the main thread's
tick) and at SIGTERM (a second SIGTERM's fast exit: test_overload.py)."""
import http.client
import re
import signal
import threading

from conftest import CLASSIFIER_DIR, wait_for

ONE_MODEL = [{"name": "classifier", "path": CLASSIFIER_DIR}]
CLASSIFY = "/v1/models/classifier/classify"
GOOD = '{"inputs": [{"input_ids": [7]}]}'


def access_ids(log, prefix):
    """The request ids of the access lines whose id starts with prefix, in log order."""
    return re.findall(r" INFO access .* id=(" + re.escape(prefix) + r"\S*) ", log)


def line_index(log, pattern):
    """The index of the first line of log matching pattern."""
    for i, line in enumerate(log.splitlines()):
        if re.search(pattern, line):
            return i
    raise AssertionError(f"no line matches {pattern!r}:\n{log[-3000:]}")


def keep_alive_requests(port, ids, classify_every=0):
    """Sends one request per id on one keep-alive connection, each after the
    previous answer: GET /healthz, or every classify_every-th a classify."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        for i, rid in enumerate(ids):
            if classify_every and i % classify_every == 0:
                conn.request("POST", CLASSIFY, body=GOOD,
                             headers={"Content-Type": "application/json", "X-Request-Id": rid})
            else:
                conn.request("GET", "/healthz", headers={"X-Request-Id": rid})
            r = conn.getresponse()
            r.read()
            assert r.status == 200, (rid, r.status)
    finally:
        conn.close()


def test_every_access_line_arrives_in_order_at_sigterm(start_daemon):
    d = start_daemon(models=ONE_MODEL)
    n_clients, n_each = 4, 150
    ids = [[f"c{c}-{i:04d}" for i in range(n_each)] for c in range(n_clients)]
    threads = [threading.Thread(target=keep_alive_requests, args=(d.port, ids[c], 5))
               for c in range(n_clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # At once: no tick has to have run for the last lines.
    assert d.stop() == 0
    log = d.log()
    for c in range(n_clients):
        # Each client's lines whole, in its order (one connection: one after another).
        assert access_ids(log, f"c{c}-") == ids[c], log[-3000:]
    last_access = max(line_index(log, f" id={ids[c][-1]} ") for c in range(n_clients))
    assert last_access < line_index(log, r" INFO exiting with status 0$"), log[-3000:]


def test_access_lines_are_written_while_the_daemon_idles(start_daemon):
    d = start_daemon(models=ONE_MODEL)
    ids = [f"idle-{i}" for i in range(5)]
    keep_alive_requests(d.port, ids, classify_every=2)
    # No more traffic, no exit: the main thread's tick writes them.
    wait_for(lambda: access_ids(d.log(), "idle-") == ids,
             f"access lines still held:\n{d.log()[-2000:]}")


def test_access_lines_keep_their_place_around_other_lines(start_daemon):
    d = start_daemon(models=ONE_MODEL)
    before = [f"before-{i}" for i in range(5)]
    # One more request on the same connection after them: the HTTP thread has
    # logged their lines before it reads that one.
    keep_alive_requests(d.port, before + ["fence"], classify_every=2)
    d.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "reload complete" in d.log(), "no reload")
    after = [f"after-{i}" for i in range(5)]
    keep_alive_requests(d.port, after, classify_every=2)
    assert d.stop() == 0
    log = d.log()
    assert access_ids(log, "before-") == before and access_ids(log, "after-") == after, log
    sighup = line_index(log, r" INFO SIGHUP: reloading")
    assert line_index(log, f" id={before[-1]} ") < sighup, log
    assert line_index(log, r" reload complete") < line_index(log, f" id={after[0]} "), log

