"""bench_daemon: the real fastformerd for `make bench`: start it on a free
127.0.0.1 port with a generated config, read its metrics, CPU time and
memory, and drive it with wrk (tests/bench/post_bodies.lua), in short runs
round-robin over several jobs (sliced) so that the machine's drift hits all
of them alike."""
import json
import os
import re
import signal
import ssl
import subprocess
import time
import urllib.request

from bench_lib import HERE, child_env, median


class Daemon:
    """A running fastformerd; stop() ends it (SIGTERM, then SIGKILL after 60 s)."""

    def __init__(self, build, tmp, name, models=None, batching=None, config=None, args=(),
                 server=None):
        """Starts fastformerd with a generated config (models: list of dicts;
        server: more server keys, e.g. TLS) or an existing config file, on a
        free 127.0.0.1 port, and waits for /readyz 200. A TLS daemon is
        reached over https without verifying its certificate."""
        # Benchmarks measure, they do not authenticate: no certificate check.
        self.ssl_ctx = ssl._create_unverified_context()
        self.log_path = os.path.join(tmp, f"{name}.log")
        if config is None:
            config = os.path.join(tmp, f"{name}.yaml")
            lines = ["server:", "  listen: 127.0.0.1:0", "  max_connections: 1024"]
            lines += [f"  {k}: {v}" for k, v in (server or {}).items()]
            lines.append("batching:")
            lines += [f"  {k}: {v}" for k, v in
                      {"workers": 1, "engine_threads": 2, **(batching or {})}.items()]
            lines.append("models:")
            for m in models:
                lines.append(f"  - name: {m['name']}")
                lines += [f"    {k}: {v}" for k, v in m.items() if k != "name"]
            lines += ["logging:", "  format: text", "  level: info"]
            with open(config, "w") as f:
                f.write("\n".join(lines) + "\n")
        else:
            args = ("--listen", "127.0.0.1:0", *args)
        env = child_env(OPENBLAS_NUM_THREADS="1")
        env.pop("NOTIFY_SOCKET", None)
        with open(self.log_path, "w") as logf:
            self.proc = subprocess.Popen([os.path.join(build, "fastformerd"), "--config", config,
                                          *args], stdout=logf, stderr=subprocess.STDOUT, env=env)
        self.port = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and self.port is None:
            m = re.search(r"listening on (https?)://127\.0\.0\.1:(\d+)", self.log())
            if m:
                self.scheme, self.port = m.group(1), int(m.group(2))
            elif self.proc.poll() is not None:
                break
            time.sleep(0.05)
        if self.port is None:
            self.stop()
            raise RuntimeError(f"fastformerd did not start:\n{self.log()[-2000:]}")
        deadline = time.monotonic() + 300
        while True:
            try:
                with urllib.request.urlopen(self.url("/readyz"), timeout=5,
                                            context=self.ssl_ctx) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"fastformerd never became ready:\n{self.log()[-2000:]}")
            time.sleep(0.1)

    def url(self, path):
        return f"{self.scheme}://127.0.0.1:{self.port}{path}"

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def get(self, path):
        with urllib.request.urlopen(self.url(path), timeout=30, context=self.ssl_ctx) as r:
            return r.read().decode()

    def post(self, path, body):
        req = urllib.request.Request(self.url(path), data=body.encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60, context=self.ssl_ctx) as r:
            return r.status, r.read().decode()

    def metrics(self):
        """{(name, labels-string): value} of every sample."""
        out = {}
        for line in self.get("/metrics").splitlines():
            if line.startswith("#") or not line.strip():
                continue
            m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)", line)
            if m:
                out[(m.group(1), m.group(2) or "")] = float(m.group(3))
        return out

    def cpu_seconds(self):
        """User + system CPU seconds of the daemon so far (/proc/PID/stat)."""
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def status(self, key):
        """VmRSS / VmHWM etc. in MiB."""
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024.0
        return float("nan")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def metric_sum(metrics, name, model):
    return sum(v for (n, labels), v in metrics.items()
               if n == name and f'model="{model}"' in labels)


def wrk(port, path, bodies_file, conns, duration_s, max_requests=0, scheme="http", close=False):
    """close: every request asks for Connection: close, so wrk opens (and,
    over https, handshakes) a new connection per request."""
    env = dict(os.environ, BENCH_PATH=path, BENCH_BODIES=bodies_file,
               BENCH_MAX_REQUESTS=str(max_requests), BENCH_CLOSE="1" if close else "")
    # One wrk thread: the machine has two cores, and both belong to the server.
    argv = ["wrk", "-t1", f"-c{conns}", f"-d{duration_s:g}s", "--timeout", "30s",
            "-s", os.path.join(HERE, "post_bodies.lua"), f"{scheme}://127.0.0.1:{port}"]
    out = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=duration_s + 120)
    m = re.search(r"BENCH_RESULT (\{.*\})", out.stdout)
    if not m:
        raise RuntimeError(f"wrk gave no result:\n{out.stdout}\n{out.stderr}")
    r = json.loads(m.group(1))
    r["req_s"] = r["requests"] / (r["duration_us"] / 1e6)
    r["errors"] = sum(r[k] for k in ("connect_errors", "read_errors", "write_errors",
                                     "status_errors", "timeouts"))
    return r


def write_bodies(path, bodies):
    with open(path, "w") as f:
        for b in bodies:
            f.write(json.dumps(b, separators=(",", ":")) + "\n")
    return path



def sliced(d, jobs, slices, slice_s, between=None):
    """Runs every job (dict: key, route, bodies, conns, model) as `slices`
    short wrk runs, round-robin over the jobs, so that the machine's drift
    hits all of them alike. between(job, acc) runs after each slice (an
    engine measurement to compare with). Returns {key: acc} with summed
    requests and duration, the per-slice p50/p99 (their medians are
    reported) and the /metrics deltas of the job's model."""
    accs = {j["key"]: {"requests": 0, "duration_us": 0, "errors": 0, "p50s": [], "p99s": [],
                       "batch_sum": 0.0, "batch_count": 0.0, "tokens_sum": 0.0,
                       "cache_hits": 0.0, "cache_misses": 0.0, "cpu_s": 0.0, "between": []}
             for j in jobs}
    names = {"batch_sum": "fastformerd_batch_size_sum",
             "batch_count": "fastformerd_batch_size_count",
             "tokens_sum": "fastformerd_batch_tokens_sum",
             "cache_hits": "fastformerd_news_cache_hits_total",
             "cache_misses": "fastformerd_news_cache_misses_total"}
    for i in range(slices):
        order = jobs if i % 2 == 0 else jobs[::-1]
        for j in order:
            a = accs[j["key"]]
            before, cpu0 = d.metrics(), d.cpu_seconds()
            r = wrk(d.port, j["route"], j["bodies"], j["conns"], slice_s)
            after, cpu1 = d.metrics(), d.cpu_seconds()
            a["cpu_s"] += cpu1 - cpu0
            for k in ("requests", "duration_us", "errors"):
                a[k] += r[k]
            a["p50s"].append(r["p50_us"])
            a["p99s"].append(r["p99_us"])
            for k, n in names.items():
                a[k] += metric_sum(after, n, j["model"]) - metric_sum(before, n, j["model"])
            a["hwm_mib"] = d.status("VmHWM")
            if between:
                a["between"].append(between(j, a))
    for a in accs.values():
        a["req_s"] = a["requests"] / (a["duration_us"] / 1e6) if a["duration_us"] else 0.0
        a["p50_us"] = median(a["p50s"])
        a["p99_us"] = median(a["p99s"])
        a["cpu_ms_per_req"] = 1e3 * a["cpu_s"] / a["requests"] if a["requests"] else float("nan")
        a["mean_batch"] = a["batch_sum"] / a["batch_count"] if a["batch_count"] else float("nan")
        a["mean_batch_tokens"] = (a["tokens_sum"] / a["batch_count"] if a["batch_count"]
                                  else float("nan"))
    return accs

