"""Shared helpers for the stress suite (tests/stress). The daemon fixture and
launcher are the integration suite's (tests/integration/conftest.py), loaded
here under the name `integration_conftest` so both suites run the daemon the
same way. Standard library only.

Knobs (environment):
  STRESS_SECONDS               each load phase (default 8; 30 for the issue's runs)
  STRESS_SIGHUP_SECONDS        SIGHUP every 100 ms for this long (default max(STRESS_SECONDS, 10))
  STRESS_SOAK_SECONDS          ASan+UBSan+LSan soak (default 45; 600 = the issue's 10 min)
  STRESS_SOAK_RELEASE_SECONDS  release-build RSS/fd soak (default 30)
  STRESS_VALGRIND_SECONDS      valgrind soak (default 15; 0 skips it)
  STRESS_SLACK                 multiplies every latency bound (default 1)
  STRESS_FIGURES               file to append the figures lines to
  FASTFORMERD, FASTFORMERD_ASAN  the daemons (default build/fastformerd, build/asan/fastformerd)
All traffic goes to 127.0.0.1."""
import http.client
import importlib.util
import json
import os
import re
import socket
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

_spec = importlib.util.spec_from_file_location(
    "integration_conftest", os.path.join(ROOT, "tests", "integration", "conftest.py"))
itc = importlib.util.module_from_spec(_spec)
sys.modules["integration_conftest"] = itc
_spec.loader.exec_module(itc)

CLASSIFIER_DIR = itc.CLASSIFIER_DIR
NEWSREC_DIR = itc.NEWSREC_DIR
MIND_NEWS = itc.MIND_NEWS
DAEMON = itc.DAEMON
assert_close = itc.assert_close
golden = itc.golden

STRESS_SECONDS = float(os.environ.get("STRESS_SECONDS", "8"))
SOAK_SECONDS = float(os.environ.get("STRESS_SOAK_SECONDS", "45"))
SLACK = float(os.environ.get("STRESS_SLACK", "1"))


def report(name, **figures):
    """Prints one figures line (shown with pytest -s, and collected by
    `make stress` into build/stress/figures.txt)."""
    line = name + ": " + ", ".join(f"{k}={v}" for k, v in figures.items())
    print("\nFIGURES " + line, flush=True)
    out = os.environ.get("STRESS_FIGURES")
    if out:
        with open(out, "a") as f:
            f.write(line + "\n")


# ---- one request ---------------------------------------------------------------------------

class Result:
    """Outcome of one request: status (int) or an error string ("refused",
    "reset", "timeout"), the JSON body when there is one, headers, latency."""
    __slots__ = ("status", "headers", "body", "latency", "sent_at")

    def __init__(self, status, headers, body, latency, sent_at):
        self.status, self.headers, self.body = status, headers, body
        self.latency, self.sent_at = latency, sent_at

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<Result {self.status} {self.latency:.3f}s {self.body[:200]!r}>"


def error_message(answer):
    """The message of an error answer in either shape: the API's
    {"error": {"message": ...}} or, under /v2, the Open Inference
    Protocol's {"error": "..."}."""
    err = answer["error"]
    return err if isinstance(err, str) else err["message"]


def request(port, method, path, body=None, headers=None, timeout=60):
    if body is not None and not isinstance(body, (bytes, str)):
        body = json.dumps(body)
    if isinstance(body, str):
        body = body.encode()
    t0 = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        return Result(r.status, {k.lower(): v for k, v in r.getheaders()}, data,
                      time.monotonic() - t0, t0)
    except ConnectionRefusedError:
        return Result("refused", {}, b"", time.monotonic() - t0, t0)
    except socket.timeout:
        return Result("timeout", {}, b"", time.monotonic() - t0, t0)
    except (ConnectionError, http.client.HTTPException, OSError) as e:
        return Result("reset", {"error": repr(e)}, b"", time.monotonic() - t0, t0)
    finally:
        conn.close()


def post(port, path, body, **kw):
    return request(port, "POST", path, body, **kw)


# ---- process and metrics -----------------------------------------------------------------

def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def fd_targets(pid):
    out = []
    for name in os.listdir(f"/proc/{pid}/fd"):
        try:
            out.append(os.readlink(f"/proc/{pid}/fd/{name}"))
        except OSError:
            pass
    return sorted(out)


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def wait_fds(pid, want, timeout=15):
    """Waits until the process has at most `want` fds; returns the last count."""
    deadline = time.monotonic() + timeout
    while True:
        n = fd_count(pid)
        if n <= want or time.monotonic() > deadline:
            return n
        time.sleep(0.05)


def metrics(port):
    """GET /metrics as {series: value}, e.g. 'fastformerd_rejected_requests_total
    {model="classifier",reason="queue_full"}' -> 3.0."""
    r = request(port, "GET", "/metrics", timeout=30)
    assert r.status == 200, r
    out = {}
    for line in r.body.decode().splitlines():
        if not line or line.startswith("#"):
            continue
        name, _, value = line.rpartition(" ")
        try:
            out[name] = float(value)
        except ValueError:
            pass
    return out


def metric_sum(m, prefix, **labels):
    """Sum of the series of family `prefix` whose labels include `labels`."""
    total = 0.0
    for k, v in m.items():
        name, _, rest = k.partition("{")
        if name != prefix:
            continue
        if all(f'{lk}="{lv}"' in rest for lk, lv in labels.items()):
            total += v
    return total


def rejected(m, reason, model=None):
    kw = {"reason": reason}
    if model is not None:
        kw["model"] = model
    return metric_sum(m, "fastformerd_rejected_requests_total", **kw)


def batches(m, model):
    return metric_sum(m, "fastformerd_batch_size_count", model=model)


def queue_depth(port):
    return int(metric_sum(metrics(port), "fastformerd_queue_depth"))


def percentile(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    k = min(len(v) - 1, max(0, int(round(p / 100.0 * (len(v) - 1)))))
    return v[k]


# ---- load ---------------------------------------------------------------------------------

class Load:
    """n_threads clients, each sending requests made by make(i, k) back to
    back on fresh connections until stop(); every Result is kept with the
    request index. `pace` (seconds) spaces each client's requests."""

    def __init__(self, port, make, n_threads, pace=0.0, timeout=120):
        self.port, self.make, self.pace, self.timeout = port, make, pace, timeout
        self.results = []  # (thread, k, kind, Result)
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True)
                        for i in range(n_threads)]

    def _run(self, i):
        k = 0
        while not self.stopping.is_set():
            kind, method, path, body, headers = self.make(i, k)
            r = request(self.port, method, path, body, headers=headers, timeout=self.timeout)
            with self.lock:
                self.results.append((i, k, kind, r))
            k += 1
            if self.pace:
                time.sleep(self.pace)

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def stop(self, join_timeout=180):
        self.stopping.set()
        for t in self.threads:
            t.join(join_timeout)
        alive = [t for t in self.threads if t.is_alive()]
        assert not alive, f"{len(alive)} load threads still waiting for answers"
        return self.results

    def count(self):
        with self.lock:
            return len(self.results)


def raw_send(port, data, linger_rst=False):
    """Opens a connection, sends bytes, returns the socket (caller closes).
    With linger_rst, close() sends a RST instead of a FIN."""
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    if linger_rst:
        import struct
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    if data:
        s.sendall(data)
    return s


def http_bytes(method, path, body=b"", headers=None):
    if not isinstance(body, bytes):
        body = json.dumps(body).encode()
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    for k, v in (headers or {}).items():
        head += f"{k}: {v}\r\n"
    head += f"Content-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


def read_response(s, timeout=30):
    """Reads one HTTP/1.1 response with Content-Length from socket s;
    returns (status, body) or (None, partial bytes) when the peer closed."""
    s.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            return None, data
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    m = re.search(rb"content-length:\s*(\d+)", head, re.I)
    n = int(m.group(1)) if m else 0
    while len(rest) < n:
        chunk = s.recv(65536)
        if not chunk:
            return None, data
        rest += chunk
    return int(head.split()[1]), rest[:n]
