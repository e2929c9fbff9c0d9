"""Slow and surplus connections.

Slowloris: clients that send a byte a second (in the headers or in the body)
must be cut off by connection_timeout_s, as idle ones are, while other
clients are served normally. Surplus connections: at max_connections new
connections wait in the listen backlog (they are not accepted, so not
refused either) until the daemon evicts the connections that have waited
longest for their headers (here idle ones); the connection in use keeps
being served."""
import socket
import threading
import time

from stresslib import (CLASSIFIER_DIR, SLACK, fd_count, http_bytes, metric_sum, metrics, percentile,
                       post, read_response, report, request, wait_fds)

TIMEOUT_S = 2
BODY = {"inputs": [{"input_ids": [7, 8, 9]}]}


def closed_by_peer(s, wait):
    """True when the server closed s within `wait` seconds (EOF or reset)."""
    s.settimeout(wait)
    try:
        while True:
            data = s.recv(4096)
            if not data:
                return True
            # A response (e.g. 408) followed by the close also counts.
    except socket.timeout:
        return False
    except OSError:
        return True


def test_byte_a_second_clients_are_cut_off_without_starving_others(start_daemon):
    d = start_daemon(models=[{"name": "classifier", "path": CLASSIFIER_DIR}],
                     server={"connection_timeout_s": TIMEOUT_S, "max_connections": 64})
    pid = d.proc.pid
    want = post(d.port, "/v1/models/classifier/classify", BODY).json()
    base_fds = fd_count(pid)
    raw = http_bytes("POST", "/v1/models/classifier/classify", BODY)
    head_len = raw.index(b"\r\n\r\n") + 4
    n_slow = 24
    cut_after = [None] * n_slow
    t0 = time.monotonic()

    def slow(i):
        s = socket.create_connection(("127.0.0.1", d.port), timeout=30)
        # Half trickle the headers; half send the headers and trickle the body.
        pos = 0 if i % 2 == 0 else head_len
        if pos:
            s.sendall(raw[:pos])
        start = time.monotonic()
        try:
            while time.monotonic() - start < 6 * TIMEOUT_S + 4:
                if pos < len(raw) - 1:  # never complete the request
                    s.send(raw[pos:pos + 1])
                    pos += 1
                if closed_by_peer(s, 1.0):
                    cut_after[i] = time.monotonic() - start
                    return
        except OSError:
            cut_after[i] = time.monotonic() - start
        finally:
            s.close()

    threads = [threading.Thread(target=slow, args=(i,)) for i in range(n_slow)]
    for t in threads:
        t.start()
    good = []
    while any(t.is_alive() for t in threads):
        r = post(d.port, "/v1/models/classifier/classify", BODY)
        good.append(r)
        time.sleep(0.02)
    for t in threads:
        t.join()
    assert d.alive()
    assert all(r.status == 200 and r.json() == want for r in good), [r for r in good
                                                                     if r.status != 200][:3]
    fds = wait_fds(pid, base_fds)
    never = sum(1 for c in cut_after if c is None)
    report("slowloris", slow_clients=n_slow, timeout_s=TIMEOUT_S, never_cut=never,
           cut_max_s=round(max((c for c in cut_after if c is not None), default=-1), 1),
           good_requests=len(good), good_p99_ms=round(percentile([r.latency for r in good], 99)
                                                      * 1e3, 1),
           fds_before=base_fds, fds_after=fds, seconds=round(time.monotonic() - t0, 1))
    assert never == 0, f"{never} of {n_slow} byte-a-second clients were never cut off"
    assert max(cut_after) <= (2 * TIMEOUT_S + 2) * SLACK, cut_after
    assert fds <= base_fds


def test_connections_over_the_limit_evict_idle_ones_without_harming_service(start_daemon):
    """At max_connections libmicrohttpd stops accepting: surplus connections
    wait in the kernel's listen backlog (1024) until the daemon evicts, for
    each of them, the connection that has waited longest (at least 1 s) for
    its next request's headers: here the idle ones, long before
    connection_timeout_s would free them. The connection in use is not
    evicted (after each answer it is the youngest) and keeps being served."""
    limit = 16
    d = start_daemon(models=[{"name": "classifier", "path": CLASSIFIER_DIR}],
                     server={"connection_timeout_s": 600, "max_connections": limit})
    pid = d.proc.pid
    want = post(d.port, "/v1/models/classifier/classify", BODY).json()
    base_fds = fd_count(pid)
    req = http_bytes("POST", "/v1/models/classifier/classify", BODY)
    idle = [socket.create_connection(("127.0.0.1", d.port), timeout=10)
            for _ in range(limit - 1)]
    time.sleep(0.3)
    # Answered after the idle ones were accepted, so it has waited less than
    # any of them for its next request.
    keep = socket.create_connection(("127.0.0.1", d.port), timeout=10)
    keep.sendall(req)
    assert read_response(keep)[0] == 200
    n_surplus = 8
    waited = [None] * n_surplus
    t0 = time.monotonic()

    def surplus(i):
        s = socket.create_connection(("127.0.0.1", d.port), timeout=30)
        try:
            s.sendall(req)
            status, body = read_response(s, timeout=30)
            if status == 200 and body:
                waited[i] = time.monotonic() - t0
        except OSError:
            pass
        finally:
            s.close()

    threads = [threading.Thread(target=surplus, args=(i,)) for i in range(n_surplus)]
    for t in threads:
        t.start()
    # The connection opened before keeps being served while the surplus waits.
    kept = 0
    while (any(t.is_alive() for t in threads) or kept < 4) and time.monotonic() - t0 < 30:
        keep.sendall(req)
        status, _ = read_response(keep)
        assert status == 200
        kept += 1
        time.sleep(0.25)
    for t in threads:
        t.join()
    keep.close()
    cut = sum(1 for s in idle if closed_by_peer(s, 0.01))
    for s in idle:
        s.close()
    fds = wait_fds(pid, base_fds)
    evicted = metric_sum(metrics(d.port), "fastformerd_http_connections_evicted_total")
    report("connection_limit", limit=limit, surplus=n_surplus,
           surplus_served=sum(1 for w in waited if w is not None),
           surplus_first_served_s=round(min((w for w in waited if w), default=-1), 2),
           surplus_last_served_s=round(max((w for w in waited if w), default=-1), 2),
           kept_alive_served=kept, idle_evicted=cut, evicted_metric=int(evicted),
           fds_before=base_fds, fds_after=fds)
    assert all(w is not None for w in waited), waited
    # Served by evicting idle connections, not by their timeout (600 s) ...
    assert max(waited) < 60, waited
    # ... one idle connection per surplus one, and never the one in use.
    assert cut == n_surplus and evicted == n_surplus, (cut, evicted)
    assert kept >= 4
    assert fds <= base_fds
    r = post(d.port, "/v1/models/classifier/classify", BODY)
    assert r.status == 200 and r.json() == want
