"""Queue pressure through the real daemon, made deterministic with a slow
model (random weights, 256 wide, 512 tokens; conftest.make_slow_classifier)
and one worker: request B1 keeps the worker busy, B2 waits in the queue
(visible as the queue-depth gauge), and only then does the test act. Covers
429 + Retry-After when the queue is full, 504 when a deadline passes in the
queue, clients that disconnect while queued, draining with requests in
flight, the drain timeout, and a second SIGTERM."""
import json
import re
import signal
import socket
import threading
import time

from conftest import CLASSIFIER_DIR

BLOCK = {"inputs": [{"input_ids": [(i * 7 + k) % 59 + 1 for k in range(512)]} for i in range(4)]}
SMALL = {"inputs": [{"input_ids": [7]}]}
OIP_SMALL = {"inputs": [{"name": "input_ids", "datatype": "INT64", "shape": [1, 1], "data": [7]}]}


def start_busy(d, n=2):
    """Sends n blocking requests on their own threads and returns once the
    worker computes one and the others wait in the queue. The slow model's
    max_batch_tokens (2048) fits exactly one request, so the first batch is
    one request whatever the arrival order."""
    results = [None] * n

    def send(i):
        try:
            results[i] = d.post("/v1/models/slow/classify", BLOCK, timeout=120)
        except OSError as e:  # the daemon was killed (test_second_sigterm_exits_at_once)
            results[i] = e

    threads = [threading.Thread(target=send, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    # Stable for two polls: not a transient between arrival and the worker's pick.
    deadline = time.monotonic() + 60
    while True:
        wait_queue_depth(d, 4 * (n - 1), exact=True)
        time.sleep(0.05)
        if queue_depth(d) == 4 * (n - 1):
            return threads, results
        assert time.monotonic() < deadline


def queue_depth(d):
    m = re.search(r'fastformerd_queue_depth\{model=""\} (\d+)', d.get("/metrics").body.decode())
    return int(m.group(1)) if m else 0


def wait_queue_depth(d, want, exact=False):
    deadline = time.monotonic() + 60
    while True:
        q = queue_depth(d)
        if (q == want) if exact else (q >= want):
            return
        assert time.monotonic() < deadline, f"queue depth stays {q}, want {want}"
        time.sleep(0.005)


def slow_daemon(start_daemon, slow_classifier, **server):
    return start_daemon(models=[{"name": "slow", "path": slow_classifier,
                                 "max_batch_tokens": 2048},
                                {"name": "classifier", "path": CLASSIFIER_DIR}],
                        batching={"workers": 1, "max_queue": server.pop("max_queue", 64)},
                        server=server)


def finish(threads, results, statuses=(200,)):
    for t in threads:
        t.join()
    for r in results:
        assert r is not None and r.status in statuses, r


def test_queue_full_gives_429_with_retry_after(start_daemon, slow_classifier):
    d = slow_daemon(start_daemon, slow_classifier, max_queue=2)
    threads, results = start_busy(d)
    r = d.post("/v1/models/classifier/classify", SMALL)
    assert r.status == 429, r
    assert int(r.headers["retry-after"]) >= 1
    assert r.json()["error"]["type"] == "resource_exhausted"
    assert r.json()["error"]["message"].startswith("the request queue is full; retry after ")
    # the Open Inference Protocol's route: its own error shape, the message as "error"
    r = d.post("/v2/models/classifier/infer", OIP_SMALL)
    assert r.status == 429, r
    assert r.json()["type"] == "resource_exhausted" and r.json()["code"] == 429
    assert r.json()["error"].startswith("the request queue is full; retry after ")
    assert d.get("/healthz").status == 200  # health never waits behind inference
    finish(threads, results)
    assert d.post("/v1/models/classifier/classify", SMALL).status == 200
    assert 'reason="queue_full"} 2' in d.get("/metrics").body.decode()  # /v1 and /v2


def test_queue_depth_gauge_per_model(start_daemon, slow_classifier):
    """The gauge has the total under model="" and each model's own items."""
    d = slow_daemon(start_daemon, slow_classifier)
    threads, results = start_busy(d)
    text = d.get("/metrics").body.decode()
    assert 'fastformerd_queue_depth{model=""} 4' in text, text
    assert 'fastformerd_queue_depth{model="slow"} 4' in text, text
    assert 'fastformerd_queue_depth{model="classifier"} 0' in text, text
    finish(threads, results)
    text = d.get("/metrics").body.decode()
    assert 'fastformerd_queue_depth{model="slow"} 0' in text, text


def test_deadline_in_queue_gives_504(start_daemon, slow_classifier):
    d = slow_daemon(start_daemon, slow_classifier)
    threads, results = start_busy(d)
    r = d.post("/v1/models/classifier/classify", SMALL, headers={"X-Request-Timeout-Ms": "50"})
    assert r.status == 504, r
    assert r.json() == {"error": {"code": 504, "type": "deadline_exceeded",
                                  "message": "the request's deadline passed while it was queued"}}
    finish(threads, results)
    assert 'reason="deadline"} 1' in d.get("/metrics").body.decode()


def test_client_disconnect_while_queued_is_dropped_and_counted(start_daemon, slow_classifier):
    d = slow_daemon(start_daemon, slow_classifier)
    threads, results = start_busy(d)
    body = json.dumps(SMALL).encode()
    s = socket.create_connection(("127.0.0.1", d.port))
    s.sendall(b"POST /v1/models/classifier/classify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
              b"Content-Length: %d\r\n\r\n" % len(body) + body)
    wait_queue_depth(d, 5)  # queued behind B2
    s.close()
    finish(threads, results)
    deadline = time.monotonic() + 30
    # The daemon counts the reject, then writes the access-log line: wait for both.
    while ('reason="disconnected"} 1' not in d.get("/metrics").body.decode()
           or not re.search(r"status=499 .*error=\"disconnected\"", d.log())):
        assert time.monotonic() < deadline, d.log()[-2000:]
        time.sleep(0.01)
    # Its item was never computed: the classifier ran no batch at all.
    assert 'fastformerd_batch_size_count{model="classifier"}' not in d.get("/metrics").body.decode()
    assert d.post("/v1/models/classifier/classify", SMALL).status == 200


def test_sigterm_drains_requests_in_flight(start_daemon, slow_classifier):
    d = slow_daemon(start_daemon, slow_classifier)
    threads, results = start_busy(d)
    d.proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 30
    while d.get("/readyz").status != 503:
        assert time.monotonic() < deadline
    r = d.get("/readyz")
    assert r.json() == {"status": "not_ready", "reason": "draining"}
    r = d.get("/ping")  # TorchServe's health check
    assert r.status == 500 and r.json() == {"status": "Unhealthy"}
    r = d.post("/v1/models/classifier/classify", SMALL)
    assert r.status == 503 and r.headers["retry-after"] == "1"
    assert r.json()["error"] == {"code": 503, "type": "unavailable",
                                 "message": "server is draining (shutting down)"}
    r = d.post("/v2/models/classifier/versions/1/infer", OIP_SMALL)
    assert r.status == 503 and r.json() == {"error": "server is draining (shutting down)",
                                            "code": 503, "type": "unavailable"}
    assert d.get("/healthz").status == 200
    finish(threads, results)  # both accepted requests are answered in full
    assert d.proc.wait(timeout=60) == 0


def test_drain_timeout_answers_queued_requests_with_503(start_daemon, slow_classifier):
    d = slow_daemon(start_daemon, slow_classifier, drain_timeout_s=0)
    threads, results = start_busy(d)
    d.proc.send_signal(signal.SIGTERM)
    for t in threads:
        t.join()
    # The one in the worker's hands finishes; the queued one gets 503.
    done = sorted(results, key=lambda r: r.status)
    assert [r.status for r in done] == [200, 503], results
    assert done[1].json()["error"]["message"] == (
        "server shut down before the request was computed")
    assert d.proc.wait(timeout=60) == 0


def test_second_sigterm_exits_at_once(start_daemon, slow_classifier):
    d = slow_daemon(start_daemon, slow_classifier)
    threads, results = start_busy(d, n=3)
    d.proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 30
    while "draining:" not in d.log():
        assert time.monotonic() < deadline
        time.sleep(0.005)
    # Answered while draining: their access lines go out before the fast exit.
    ids = [f"during-drain-{i}" for i in range(5)]
    for rid in ids:
        assert d.get("/healthz", headers={"X-Request-Id": rid}).status == 200
    d.proc.send_signal(signal.SIGTERM)
    assert d.proc.wait(timeout=10) == 1
    log = d.log()
    assert "second SIGTERM: exiting at once" in log
    assert re.findall(r" INFO access .* id=(during-drain-\S*) ", log) == ids, log[-3000:]
    for t in threads:
        t.join()
