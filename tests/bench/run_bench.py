#!/usr/bin/python3
"""run_bench: `make bench`. Runs the six benchmarks of issue 6 and writes a
Markdown table to build/bench/results.md (and stdout), raw figures to
build/bench/results.json. Not a test: nothing here fails on slow numbers.

The machine is shared and noisy, so every target is a ratio of two
measurements taken in the same run, interleaved (A B A B ...) and reduced to
medians, so that slow drift of the machine's load cancels.

  1 engine    forward vs its own cblas_sgemm calls replayed alone (gemm_share)
  2 torch     C engine vs the PyTorch reference on the same weights
  3 length    tokens/s at lengths 64..4096 with constant tokens per batch
  4 server    fastformerd end to end with wrk: 1/8/32/128 connections,
              server_efficiency vs the engine at the batch size the server formed,
              and dynamic batching vs max_batch_size 1
  5 recommend catalog ids vs raw titles (cache disabled, then warm)
  6 memory    peak RSS idle and under load, RSS after 10k and 200k requests

BENCH_QUICK=1 (or --quick) shortens every phase (fewer rounds, shorter wrk
runs, 50k instead of 200k requests). --only engine,torch,... runs a subset.
OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are removed from the measured processes' environment
(OpenBLAS autodetects, as in deployment) unless BENCH_KEEP_CORETYPE=1.
Needs Debian's python3-torch (models are written with the reference model),
wrk, and the binaries of `make all build/bench_engine`."""
import argparse
import datetime
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

import bench_models  # noqa: E402

PYTHON = "/usr/bin/python3"
SHAPES = [(1, 32), (1, 128), (32, 32), (32, 128), (64, 256)]
LENGTHS = [64, 256, 1024, 4096]
TOKENS_PER_BATCH = 8192
ALL_PHASES = ["engine", "torch", "length", "server", "recommend", "memory"]


def child_env(**extra):
    """The environment of every measured process (bench_engine, PyTorch,
    fastformerd). OPENBLAS_CORETYPE is removed so that OpenBLAS picks its
    kernels for this CPU, as the deployed daemon does (deploy/ never sets it);
    a session that exports e.g. Haswell would otherwise force AVX2 kernels on
    an AVX-512 machine. OPENBLAS_L2_SIZE goes with it: the two are set as a
    pair and a cache size meant for one core type must not tune another's
    blocking. BENCH_KEEP_CORETYPE=1 keeps both inherited values."""
    env = dict(os.environ, **extra)
    if os.environ.get("BENCH_KEEP_CORETYPE") != "1":
        env.pop("OPENBLAS_CORETYPE", None)
        env.pop("OPENBLAS_L2_SIZE", None)
    return env


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def median(xs):
    return statistics.median(xs) if xs else float("nan")


# ---- long-lived measuring processes (bench_engine, torch_bench) -------------------

class Measurer:
    """A subprocess speaking the bench_engine line protocol: one command
    line in, one "ok ..." or "error ..." line out."""

    def __init__(self, name, argv, threads):
        self.name = name
        self.last = {}
        env = child_env(OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads),
                        MKL_NUM_THREADS=str(threads))
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     env=env, text=True, bufsize=1)

    def ask(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        reply = self.proc.stdout.readline()
        if not reply.startswith("ok"):
            raise RuntimeError(f"{self.name}: '{line}' -> {reply.strip() or 'no reply (exited?)'}")
        return reply.split()[1:]

    def seconds(self, cmd):
        """The first field of the reply; the whole reply is kept in
        self.last[command word] (bench_engine adds GFLOP and GEMM calls)."""
        reply = self.ask(cmd)
        self.last[cmd.split()[0]] = reply
        return float(reply[0])

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write("quit\n")
                self.proc.stdin.close()
                self.proc.wait(timeout=30)
            except (BrokenPipeError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()


def engine(build, model_dir, threads):
    return Measurer(f"bench_engine({os.path.basename(model_dir)}, {threads}t)",
                    [os.path.join(build, "bench_engine"), "--model", model_dir,
                     "--threads", str(threads)], threads)


def torch_proc(model_dir, threads):
    return Measurer(f"torch({os.path.basename(model_dir)}, {threads}t)",
                    [PYTHON, os.path.join(HERE, "torch_bench.py"), model_dir, str(threads)],
                    threads)


def reps_for(measurer, cmd_fmt, block_s):
    """Warm-up run, then the repetitions that make one block last ~block_s
    (a warm-up longer than a block already tells: one repetition)."""
    t = measurer.seconds(cmd_fmt.format(n=1))
    if t < block_s:
        t = measurer.seconds(cmd_fmt.format(n=1))
    return max(1, min(10_000, int(block_s / max(t, 1e-5))))


def interleaved(jobs, rounds):
    """jobs: {key: (measurer, cmd_fmt, reps)}; runs them round-robin `rounds`
    times (rotating the start so no job always goes first) and returns
    ({key: median wall seconds per repetition}, {key: median CPU seconds per
    repetition}). CPU seconds (the reply's third field) count the work done
    whatever share of the cores the busy machine gave the process."""
    keys = list(jobs)
    per = {k: [] for k in keys}
    cpu = {k: [] for k in keys}
    for r in range(rounds):
        for k in keys[r % len(keys):] + keys[:r % len(keys)]:
            m, fmt, reps = jobs[k]
            per[k].append(m.seconds(fmt.format(n=reps)) / reps)
            cpu[k].append(float(m.last[fmt.split()[0]][2]) / reps)
    return ({k: median(v) for k, v in per.items()}, {k: median(v) for k, v in cpu.items()})


# ---- machine description -----------------------------------------------------------

def machine():
    def run(argv):
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=10).stdout
        except OSError:
            return ""
    cpu = re.search(r"Model name:\s*(.+)", run(["lscpu"]))
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    commit = run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"]).strip()
    dirty = run(["git", "-C", ROOT, "status", "--porcelain", "model", "server"]).strip()
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu.group(1).strip() if cpu else "unknown",
        "cores": os.cpu_count(),
        "kernel": os.uname().release,
        "load_at_start": load,
        "commit": commit + (" (model/ or server/ modified)" if dirty else ""),
        "openblas_coretype_env": os.environ.get("OPENBLAS_CORETYPE", "unset"),
        "openblas_l2_size_env": os.environ.get("OPENBLAS_L2_SIZE", "unset"),
        "coretype_kept": os.environ.get("BENCH_KEEP_CORETYPE") == "1",
    }


# ---- 1. engine vs the GEMM limit ----------------------------------------------------

def bench_engine(build, models, quick, res):
    rounds = 3 if quick else 7
    block = 0.1 if quick else 0.25
    rows = []
    for label, model_dir in models:
        e = engine(build, model_dir, 1)
        try:
            info = e.ask("info")
            res["corename"] = info[6]
            for b, n in SHAPES:
                if quick and label == "large" and b * n > 1024:
                    continue
                fwd, gemm = f"fwd {b} {n} {{n}}", f"gemm {b} {n} {{n}}"
                reps = reps_for(e, fwd, block)
                cost = b * n * (9 if label == "large" else 1)  # ~ forward time
                if cost <= 65536:  # the first gemm also records the calls (untimed)
                    e.seconds(gemm.format(n=1))
                rnds = rounds if cost <= 8192 else (3 if cost <= 65536 else 2)
                med, cpu = interleaved({"fwd": (e, fwd, reps), "gemm": (e, gemm, reps)}, rnds)
                gflop = float(e.last["fwd"][1])
                n_calls = int(e.last["gemm"][3])
                row = {"model": label, "batch": b, "length": n, "fwd_ms": med["fwd"] * 1e3,
                       "gemm_ms": med["gemm"] * 1e3, "docs_s": b / med["fwd"],
                       "tokens_s": b * n / med["fwd"], "gflops": gflop / med["fwd"],
                       "gemm_gflops": gflop / med["gemm"],
                       "gemm_share": med["gemm"] / med["fwd"], "gemm_calls": n_calls,
                       "cpu_fwd_ms": cpu["fwd"] * 1e3, "cpu_gemm_ms": cpu["gemm"] * 1e3,
                       "cpu_gemm_share": cpu["gemm"] / cpu["fwd"],
                       "rounds": rnds, "reps": reps}
                rows.append(row)
                log(f"engine {label} {b}x{n}: fwd {row['fwd_ms']:.3f} ms, gemm "
                    f"{row['gemm_ms']:.3f} ms, share {row['gemm_share']:.3f} (CPU time "
                    f"{row['cpu_gemm_share']:.3f})")
        finally:
            e.close()
    res["engine"] = rows


# ---- 2. engine vs PyTorch --------------------------------------------------------------

def bench_torch(build, models, quick, res):
    rounds = 3 if quick else 5
    block = 0.1 if quick else 0.2
    rows, checks = [], {}
    for label, model_dir in models:
        shapes = SHAPES if label == "official" else [(1, 32), (32, 32)]
        if quick and label != "official":
            continue
        procs = {"C 1t": engine(build, model_dir, 1), "C 2t": engine(build, model_dir, 2),
                 "torch 1t": torch_proc(model_dir, 1), "torch 2t": torch_proc(model_dir, 2)}
        try:
            res["torch_version"] = " ".join(procs["torch 1t"].ask("info")[:2])
            a = [float(x) for x in procs["C 1t"].ask("pooled 2 16")]
            t = [float(x) for x in procs["torch 1t"].ask("pooled 2 16")]
            checks[label] = max(abs(x - y) for x, y in zip(a, t))
            for b, n in shapes:
                fmt = f"fwd {b} {n} {{n}}"
                jobs = {k: (p, fmt, reps_for(p, fmt, block)) for k, p in procs.items()}
                rnds = rounds if b * n * (9 if label == "large" else 1) <= 8192 else 3
                med, cpu = interleaved(jobs, rnds)
                c_best = min(("C 1t", "C 2t"), key=lambda k: med[k])
                t_best = min(("torch 1t", "torch 2t"), key=lambda k: med[k])
                row = {"model": label, "batch": b, "length": n,
                       **{f"{k} docs_s": b / v for k, v in med.items()},
                       "C best": c_best, "torch best": t_best,
                       "ratio": med[t_best] / med[c_best],
                       # 1 thread each: torch CPU seconds per forward / C's.
                       "cpu_ratio_1t": cpu["torch 1t"] / cpu["C 1t"]}
                rows.append(row)
                log(f"torch {label} {b}x{n}: C {b / med[c_best]:.1f} docs/s ({c_best}), torch "
                    f"{b / med[t_best]:.1f} docs/s ({t_best}), ratio {row['ratio']:.2f} "
                    f"(CPU time, 1 thread: {row['cpu_ratio_1t']:.2f})")
        finally:
            for p in procs.values():
                p.close()
    res["torch"] = rows
    res["torch_check_max_abs_diff"] = checks


# ---- 3. length scaling -----------------------------------------------------------------

def bench_length(build, model_dir, quick, res):
    rounds = 3 if quick else 7
    e = engine(build, model_dir, 1)
    try:
        jobs = {}
        for n in LENGTHS:
            b = max(1, TOKENS_PER_BATCH // n)
            fmt = f"fwd {b} {n} {{n}}"
            jobs[n] = (e, fmt, reps_for(e, fmt, 0.1 if quick else 0.3))
        med, cpu = interleaved(jobs, rounds)
        rows = [{"length": n, "batch": max(1, TOKENS_PER_BATCH // n),
                 "tokens_s": max(1, TOKENS_PER_BATCH // n) * n / med[n], "ms": med[n] * 1e3,
                 "cpu_tokens_s": max(1, TOKENS_PER_BATCH // n) * n / cpu[n]}
                for n in LENGTHS]
    finally:
        e.close()
    for r in rows:
        log(f"length {r['length']}: {r['tokens_s']:.0f} tokens/s")
    res["length"] = rows
    res["length_ratio"] = rows[-1]["tokens_s"] / rows[0]["tokens_s"]
    res["length_cpu_ratio"] = rows[-1]["cpu_tokens_s"] / rows[0]["cpu_tokens_s"]


# ---- the daemon -----------------------------------------------------------------------------

class Daemon:
    def __init__(self, build, tmp, name, models=None, batching=None, config=None, args=()):
        """Starts fastformerd with a generated config (models: list of dicts)
        or an existing config file, on a free 127.0.0.1 port, and waits for
        /readyz 200."""
        self.log_path = os.path.join(tmp, f"{name}.log")
        if config is None:
            config = os.path.join(tmp, f"{name}.yaml")
            lines = ["server:", "  listen: 127.0.0.1:0", "  max_connections: 1024",
                     "batching:"]
            lines += [f"  {k}: {v}" for k, v in
                      {"workers": 2, "blas_threads": 1, **(batching or {})}.items()]
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
            m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", self.log())
            if m:
                self.port = int(m.group(1))
            elif self.proc.poll() is not None:
                break
            time.sleep(0.05)
        if self.port is None:
            self.stop()
            raise RuntimeError(f"fastformerd did not start:\n{self.log()[-2000:]}")
        deadline = time.monotonic() + 300
        while True:
            try:
                with urllib.request.urlopen(self.url("/readyz"), timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"fastformerd never became ready:\n{self.log()[-2000:]}")
            time.sleep(0.1)

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def get(self, path):
        with urllib.request.urlopen(self.url(path), timeout=30) as r:
            return r.read().decode()

    def post(self, path, body):
        req = urllib.request.Request(self.url(path), data=body.encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as r:
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


def wrk(port, path, bodies_file, conns, duration_s, max_requests=0):
    env = dict(os.environ, BENCH_PATH=path, BENCH_BODIES=bodies_file,
               BENCH_MAX_REQUESTS=str(max_requests))
    # One wrk thread: the machine has two cores, and both belong to the server.
    argv = ["wrk", "-t1", f"-c{conns}", f"-d{duration_s}s", "--timeout", "30s",
            "-s", os.path.join(HERE, "post_bodies.lua"), f"http://127.0.0.1:{port}"]
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


def engine_docs_at(e, batch, length, quick):
    """Docs/s of 2 workers x 1 BLAS thread each running forwards at batch x
    length, like the daemon's default pool (one block of ~0.3 s), and the
    CPU seconds per doc."""
    fmt = f"par 2 {batch} {length} {{n}}"
    t1 = e.seconds(fmt.format(n=1))
    reps = max(1, min(10_000, int((0.15 if quick else 0.3) / max(t1, 1e-5))))
    wall = e.seconds(fmt.format(n=reps))
    return 2 * batch * reps / wall, float(e.last["par"][2]) / (2 * batch * reps)


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


# ---- 4. server end to end ------------------------------------------------------------------

def bench_server(build, model_dir, tmp, quick, res):
    slices, slice_s = (2, 2) if quick else (4, 2)
    texts = bench_models.texts(os.path.join(model_dir, "vocab.txt"), 64, 64)
    bodies = write_bodies(os.path.join(tmp, "classify.jsonl"), [{"inputs": [t]} for t in texts])
    d = Daemon(build, tmp, "server", models=[{"name": "cls", "path": model_dir},
                                             {"name": "cls-b1", "path": model_dir,
                                              "max_batch_size": 1}])
    e = engine(build, model_dir, 1)
    try:
        res.setdefault("corename", e.ask("info")[6])
        status, body = d.post("/v1/models/cls/classify", json.dumps({"inputs": [texts[0]]}))
        assert status == 200, body
        wrk(d.port, "/v1/models/cls/classify", bodies, 8, 2)  # warm-up
        reps_1x64 = reps_for(e, "fwd 1 64 {n}", 0.2)

        def engine_between(job, acc):
            """After a 1-connection slice: the engine's 1x64 forward (1 BLAS
            thread, as a worker runs it); otherwise engine docs/s at the
            batch size the server formed so far."""
            mb = acc["batch_sum"] / acc["batch_count"] if acc["batch_count"] else 1.0
            b = max(1, round(mb))
            docs_s, cpu_per_doc = engine_docs_at(e, b, 64, quick)
            out = {"batch": b, "docs_s": docs_s, "cpu_per_doc": cpu_per_doc}
            if job["conns"] == 1:
                out["fwd_1x64_s"] = e.seconds(f"fwd 1 64 {reps_1x64}") / reps_1x64
                out["cpu_1x64_s"] = float(e.last["fwd"][2]) / reps_1x64
            return out

        jobs = [{"key": (m, c), "model": m, "conns": c, "bodies": bodies,
                 "route": f"/v1/models/{m}/classify"}
                for m, c in [("cls", 1), ("cls", 8), ("cls", 32), ("cls-b1", 32), ("cls", 128)]]
        accs = sliced(d, jobs, slices, slice_s, engine_between)
        rows = []
        for (model, conns), a in accs.items():
            a.update(model=model, conns=conns,
                     engine_batch=a["between"][-1]["batch"],
                     engine_docs_s=median([x["docs_s"] for x in a["between"]]))
            a["server_efficiency"] = a["req_s"] / a["engine_docs_s"]
            a["engine_cpu_ms_per_doc"] = median([x["cpu_per_doc"] for x in a["between"]]) * 1e3
            # The same ratio in CPU time: engine CPU per doc / daemon CPU per request.
            a["cpu_efficiency"] = a["engine_cpu_ms_per_doc"] / a["cpu_ms_per_req"]
            if conns == 1:
                res["engine_fwd_1x64_ms"] = median([x["fwd_1x64_s"] for x in a["between"]]) * 1e3
                res["engine_cpu_1x64_ms"] = median([x["cpu_1x64_s"] for x in a["between"]]) * 1e3
            rows.append(a)
            log(f"server {model} c={conns}: {a['req_s']:.0f} req/s, p50 {a['p50_us'] / 1e3:.2f} ms,"
                f" p99 {a['p99_us'] / 1e3:.2f} ms, mean batch {a['mean_batch']:.2f}, "
                f"efficiency {a['server_efficiency']:.2f} (CPU time {a['cpu_efficiency']:.2f}), "
                f"errors {a['errors']}")
        res["server"] = rows
        res["server_daemon_hwm_mib"] = d.status("VmHWM")
    finally:
        e.close()
        d.stop()


# ---- 5. recommendation --------------------------------------------------------------------

def bench_recommend(build, rec_dir, news_tsv, tmp, quick, res):
    import random
    slices, slice_s = (2, 2) if quick else (4, 2)
    conns = 32
    titles = bench_models.read_titles(news_tsv)
    rng = random.Random(5)
    reqs = []
    for _ in range(32):
        pick = rng.sample(titles, 70)
        reqs.append((pick[:50], pick[50:]))
    by_id = write_bodies(os.path.join(tmp, "rec_ids.jsonl"), [
        {"history": [{"news_id": i} for i, _ in h], "candidates": [{"news_id": i} for i, _ in c]}
        for h, c in reqs])
    by_title = write_bodies(os.path.join(tmp, "rec_titles.jsonl"), [
        {"history": [t for _, t in h], "candidates": [t for _, t in c]} for h, c in reqs])
    d = Daemon(build, tmp, "recommend", models=[
        {"name": "rec", "path": rec_dir, "news_catalog": news_tsv, "news_cache_entries": 8192},
        {"name": "rec-nocache", "path": rec_dir, "news_catalog": news_tsv,
         "news_cache_entries": 0}])
    try:
        for f, m in ((by_id, "rec"), (by_title, "rec-nocache")):
            with open(f) as fh:
                status, body = d.post(f"/v1/models/{m}/recommend", fh.readline())
            assert status == 200, body
        # Fills the cache of `rec` with every title of the bodies (2240 < 8192 entries).
        wrk(d.port, "/v1/models/rec/recommend", by_title, 8, 2)
        jobs = [{"key": label, "model": m, "conns": conns, "bodies": f,
                 "route": f"/v1/models/{m}/recommend"}
                for label, m, f in [("catalog ids", "rec", by_id),
                                    ("raw titles, cache disabled", "rec-nocache", by_title),
                                    ("raw titles, warm cache", "rec", by_title)]]
        accs = sliced(d, jobs, slices, slice_s)
        rows = []
        for label, a in accs.items():
            a.update(label=label, conns=conns)
            rows.append(a)
            log(f"recommend {label}: {a['req_s']:.0f} req/s, p99 {a['p99_us'] / 1e3:.2f} ms, "
                f"errors {a['errors']}")
        res["recommend"] = rows
        res["recommend_ratio"] = rows[0]["req_s"] / rows[1]["req_s"]
    finally:
        d.stop()


# ---- 6. memory ----------------------------------------------------------------------------

def default_models_present():
    conf = os.path.join(ROOT, "conf", "fastformerd.yaml")
    with open(conf) as f:
        paths = re.findall(r"^\s*(?:path|news_catalog):\s*(\S+)", f.read(), re.M)
    base = os.path.dirname(conf)
    return conf, bool(paths) and all(os.path.exists(os.path.join(base, p)) for p in paths)


def parse_estimate(text):
    """The daemon's own memory estimate from its start-up log, in MiB, or None."""
    for line in text.splitlines():
        if "estimate" not in line.lower():
            continue
        m = re.search(r"([\d.]+)\s*(MiB|MB|GiB|GB|KiB|kB|bytes)", line.split("estimate", 1)[-1])
        if m:
            v = float(m.group(1))
            return v * {"MiB": 1, "MB": 1e6 / 2**20, "GiB": 1024, "GB": 1e9 / 2**20,
                        "KiB": 1 / 1024, "kB": 1e3 / 2**20, "bytes": 1 / 2**20}[m.group(2)]
    return None


def bench_memory(build, model_dir, tmp, quick, res):
    """RSS idle, after the first 10k requests and after `total` requests.
    Each phase is also capped in time (the machine may be slow); the table
    gives the request counts actually reached."""
    total, first_s, rest_s = (50_000, 30, 60) if quick else (200_000, 60, 180)
    conf, present = default_models_present()
    if present:
        d = Daemon(build, tmp, "memory", config=conf)
        models = json.loads(d.get("/v1/models"))["models"]
        cls = next(m["name"] for m in models if m.get("task") == "classification")
        vocab = os.path.join(ROOT, "models", cls, "vocab.txt")
        served = "default models (conf/fastformerd.yaml)"
    else:
        d = Daemon(build, tmp, "memory", models=[{"name": "cls", "path": model_dir}])
        cls, vocab = "cls", os.path.join(model_dir, "vocab.txt")
        served = "generated official-shape classifier (models/ has no default models yet)"
    try:
        if not os.path.exists(vocab):
            vocab = os.path.join(model_dir, "vocab.txt")
        texts = bench_models.texts(vocab, 64, 64, seed=7)
        bodies = write_bodies(os.path.join(tmp, "memory.jsonl"), [{"inputs": [t]} for t in texts])
        route = f"/v1/models/{cls}/classify"
        time.sleep(1.0)
        out = {"served": served, "estimate_mib": parse_estimate(d.log()),
               "idle_rss_mib": d.status("VmRSS"), "idle_hwm_mib": d.status("VmHWM")}
        r = wrk(d.port, route, bodies, 32, first_s, max_requests=10_000)
        out["rss_10k_mib"] = d.status("VmRSS")
        out["n_first"] = r["requests"]
        r2 = wrk(d.port, route, bodies, 32, rest_s, max_requests=total - r["requests"])
        out["rss_total_mib"] = d.status("VmRSS")
        out["n_total"] = r["requests"] + r2["requests"]
        out["load_hwm_mib"] = d.status("VmHWM")
        out["req_s"] = r2["req_s"]
        out["errors"] = r["errors"] + r2["errors"]
        out["growth_mib"] = out["rss_total_mib"] - out["rss_10k_mib"]
        log(f"memory: idle {out['idle_rss_mib']:.1f} MiB, peak {out['load_hwm_mib']:.1f} MiB, "
            f"after {out['n_first']} {out['rss_10k_mib']:.1f}, after {out['n_total']} "
            f"{out['rss_total_mib']:.1f} MiB")
        res["memory"] = out
    finally:
        d.stop()


# ---- the report --------------------------------------------------------------------------------

def fmt(x, spec=".2f"):
    if x is None or x != x:
        return "n/a"
    return format(x, spec)


def verdict(ok, cpu_ok=None):
    """By the wall-clock figure; the CPU-time figure's verdict in brackets."""
    v = "n/a" if ok is None else ("yes" if ok else "**no**")
    if cpu_ok is not None:
        v += f" (CPU time: {'yes' if cpu_ok else 'no'})"
    return v


def report(res, quick):
    mc = res["machine"]
    out = []
    w = out.append
    w(f"# fastformerd benchmarks ({mc['date']})\n")
    w(f"- Machine: {mc['cpu']}, {mc['cores']} cores, Linux {mc['kernel']}; load average at start "
      f"{mc['load_at_start']} (a shared, busy machine: absolute figures are noisy, the targets "
      "are ratios measured within this run, interleaved, medians)")
    ct = (f"OPENBLAS_CORETYPE={mc['openblas_coretype_env']} kept (BENCH_KEEP_CORETYPE=1)"
          if mc["coretype_kept"] else
          f"autodetected; the session's OPENBLAS_CORETYPE={mc['openblas_coretype_env']} and "
          f"OPENBLAS_L2_SIZE={mc['openblas_l2_size_env']} are removed for every measured "
          "process, as in deployment")
    w(f"- Commit {mc['commit']}; OpenBLAS 0.3.21 core `{res.get('corename', '?')}` ({ct}); "
      f"{res.get('torch_version', 'torch n/a')} on the same OpenBLAS")
    w("- Threads: engine benchmarks 1 and 3 with OPENBLAS_NUM_THREADS=1; benchmark 2 runs C and "
      "PyTorch each with 1 and 2 threads (OPENBLAS_NUM_THREADS = OMP_NUM_THREADS = "
      "torch.set_num_threads) and compares the faster of each; fastformerd with workers 2 x "
      "blas_threads 1 (OPENBLAS_NUM_THREADS=1); wrk with 1 thread on the same 2 cores")
    w("- Wall-clock figures decide the targets. Beside them, the same ratios in CPU time "
      "(process CPU seconds of the engine, of PyTorch, of the daemon): on a shared machine a "
      "process that never sleeps gets a fraction of a core while one that sleeps between "
      "requests is scheduled at once, so wall ratios between such processes mislead; CPU "
      "time counts the work itself")
    w(f"- Mode: {'BENCH_QUICK=1 (short runs)' if quick else 'full'}\n")

    # Targets
    t = []
    eng = {(r["model"], r["batch"], r["length"]): r for r in res.get("engine", [])}
    for shp in ((32, 128), (64, 256)):
        r = eng.get(("official", *shp))
        t.append((f"gemm_share >= 0.85, official {shp[0]}x{shp[1]}",
                  f"{fmt(r and r['gemm_share'])} (CPU time {fmt(r and r['cpu_gemm_share'])})",
                  verdict(r and r["gemm_share"] >= 0.85, r and r["cpu_gemm_share"] >= 0.85)))
    tor = {(r["model"], r["batch"], r["length"]): r for r in res.get("torch", [])}
    for shp in ((32, 128), (1, 32)):
        r = tor.get(("official", *shp))
        t.append((f"C docs/s >= 1.3x PyTorch, official {shp[0]}x{shp[1]}",
                  f"{fmt(r and r['ratio'])}x (CPU time, 1 thread: "
                  f"{fmt(r and r['cpu_ratio_1t'])}x)",
                  verdict(r and r["ratio"] >= 1.3, r and r["cpu_ratio_1t"] >= 1.3)))
    lr = res.get("length_ratio")
    lc = res.get("length_cpu_ratio")
    t.append(("tokens/s at 4096 >= 0.8x at 64", f"{fmt(lr)} (CPU time {fmt(lc)})",
              verdict(lr and lr >= 0.8, lc and lc >= 0.8)))
    srv = {(r["model"], r["conns"]): r for r in res.get("server", [])}
    s32, s1, b1 = srv.get(("cls", 32)), srv.get(("cls", 1)), srv.get(("cls-b1", 32))
    t.append(("server_efficiency >= 0.85 at 32 connections",
              f"{fmt(s32 and s32['server_efficiency'])} (CPU time "
              f"{fmt(s32 and s32['cpu_efficiency'])})",
              verdict(s32 and s32["server_efficiency"] >= 0.85,
                      s32 and s32["cpu_efficiency"] >= 0.85)))
    fwd = res.get("engine_fwd_1x64_ms")
    p50r = s1["p50_us"] / 1e3 / fwd if s1 and fwd else None
    t.append(("p50 at 1 connection <= 1.3x engine 1x64 forward",
              f"{fmt(s1 and s1['p50_us'] / 1e3)} ms vs {fmt(fwd, '.3f')} ms wall "
              f"({fmt(res.get('engine_cpu_1x64_ms'), '.3f')} ms CPU) = {fmt(p50r)}x",
              verdict(p50r and p50r <= 1.3)))
    br = s32["req_s"] / b1["req_s"] if s32 and b1 else None
    # What batching can give at most here: the engine's own docs/s at the
    # batch the server formed over its docs/s at batch 1 (both 2 workers x 1
    # BLAS thread, measured between the same slices).
    ceiling = s32["engine_docs_s"] / b1["engine_docs_s"] if s32 and b1 else None
    t.append(("batching req/s >= 2x max_batch_size 1 (32 conns)",
              f"{fmt(br)}x (engine ceiling: docs/s at batch {s32 and s32['engine_batch']} / at "
              f"batch 1 = {fmt(ceiling)}x)", verdict(br and br >= 2)))
    tail = s32["p99_us"] / s32["p50_us"] if s32 and s32["p50_us"] else None
    t.append(("p99 <= 3x p50 with batching (32 conns)", fmt(tail) + "x",
              verdict(tail and tail <= 3)))
    rr = res.get("recommend_ratio")
    t.append(("recommend: catalog ids >= 5x raw titles without cache", fmt(rr) + "x",
              verdict(rr and rr >= 5)))
    mem = res.get("memory")
    if mem:
        est = mem["estimate_mib"]
        t.append(("peak RSS under load <= daemon's estimate + 32 MB",
                  f"{fmt(mem['load_hwm_mib'], '.1f')} MiB vs estimate "
                  f"{fmt(est, '.1f') if est else 'not logged'}",
                  verdict(None if est is None else mem["load_hwm_mib"] <= est + 32e6 / 2**20)))
        t.append((f"RSS growth {mem['n_first']} -> {mem['n_total']} requests <= 1 MB",
                  f"{fmt(mem['growth_mib'], '+.2f')} MiB",
                  verdict(mem["growth_mib"] <= 1e6 / 2**20)))
    for p, why in res.get("failures", {}).items():
        w(f"- **{p} benchmark failed**: {why}")
    w("## Targets\n")
    w("| target | measured | holds |")
    w("|---|---|---|")
    for row in t:
        w("| " + " | ".join(row) + " |")
    w("")

    if res.get("engine"):
        w("## 1. Engine vs the GEMM limit (1 BLAS thread)\n")
        w("Forward = model_encode_ids (gather, encoder, pooling). GEMM-only = the forward's own "
          "cblas_sgemm calls (recorded through -Wl,--wrap) replayed alone on the same buffers. "
          "GFLOP/s counts GEMM flops (fastformer_gemm_flops).\n")
        w("| model | batch x len | forward ms | GEMM-only ms | docs/s | tokens/s | GFLOP/s "
          "| GEMM-only GFLOP/s | gemm_share | CPU ms fwd / GEMM | gemm_share in CPU time |")
        w("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
        for r in res["engine"]:
            w(f"| {r['model']} | {r['batch']}x{r['length']} | {r['fwd_ms']:.3f} | "
              f"{r['gemm_ms']:.3f} | {r['docs_s']:.1f} | {r['tokens_s']:.0f} | "
              f"{r['gflops']:.1f} | {r['gemm_gflops']:.1f} | {r['gemm_share']:.3f} | "
              f"{r['cpu_fwd_ms']:.3f} / {r['cpu_gemm_ms']:.3f} | {r['cpu_gemm_share']:.3f} |")
        w("\nModels: official D=256 H=16 I=256 L=2; large D=768 H=12 I=3072 L=2; random "
          "N(0, 0.02) weights, vocab 30000.\n")
    if res.get("torch"):
        w("## 2. Engine vs PyTorch (same weights, same ids)\n")
        chk = ", ".join(f"{k} {v:.1e}" for k, v in res["torch_check_max_abs_diff"].items())
        w(f"Pooled vectors agree (max |C - torch| on 2x16: {chk}). torch.inference_mode(), "
          "warm-up, model.encode(ids).\n")
        w("| model | batch x len | C 1t docs/s | C 2t docs/s | torch 1t docs/s | "
          "torch 2t docs/s | C / torch (best of each) | same in CPU time, 1 thread |")
        w("|---|---|--:|--:|--:|--:|--:|--:|")
        for r in res["torch"]:
            w(f"| {r['model']} | {r['batch']}x{r['length']} | {r['C 1t docs_s']:.1f} | "
              f"{r['C 2t docs_s']:.1f} | {r['torch 1t docs_s']:.1f} | "
              f"{r['torch 2t docs_s']:.1f} | {r['ratio']:.2f} | {r['cpu_ratio_1t']:.2f} |")
        w("")
    if res.get("length"):
        w(f"## 3. Length scaling (official shape, {TOKENS_PER_BATCH} tokens per batch, 1 thread)\n")
        w("| length | batch | ms/batch | tokens/s | tokens per CPU second |")
        w("|--:|--:|--:|--:|--:|")
        for r in res["length"]:
            w(f"| {r['length']} | {r['batch']} | {r['ms']:.2f} | {r['tokens_s']:.0f} | "
              f"{r['cpu_tokens_s']:.0f} |")
        w(f"\ntokens/s at {LENGTHS[-1]} / at {LENGTHS[0]}: {res['length_ratio']:.3f} "
          f"(CPU time: {res['length_cpu_ratio']:.3f})\n")
    if res.get("server"):
        w("## 4. Server end to end (wrk, single-text classify of 64 tokens, official shape)\n")
        w("Each row is several short wrk runs, round-robin with the other rows; p50/p99 are the "
          "medians of the runs' percentiles. After each run, the engine measures docs/s with 2 "
          "threads x 1 BLAS thread each running forwards at the server's mean batch size "
          "(rounded) x 64, like the daemon's 2 workers (median reported); server_efficiency = "
          "req/s / that. Engine 1x64 forward (1 thread, measured after each 1-connection run): "
          f"{fmt(res.get('engine_fwd_1x64_ms'), '.3f')} ms.\n")
        w("| model | conns | req/s | p50 ms | p99 ms | mean batch | mean batch tokens | "
          "engine docs/s | server_efficiency | daemon CPU ms/req | engine CPU ms/doc | "
          "efficiency in CPU time | errors |")
        w("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
        for r in res["server"]:
            w(f"| {r['model']} | {r['conns']} | {r['req_s']:.0f} | {r['p50_us'] / 1e3:.2f} | "
              f"{r['p99_us'] / 1e3:.2f} | {fmt(r['mean_batch'])} | "
              f"{fmt(r['mean_batch_tokens'], '.0f')} | {r['engine_docs_s']:.0f} | "
              f"{r['server_efficiency']:.3f} | {fmt(r['cpu_ms_per_req'], '.3f')} | "
              f"{fmt(r['engine_cpu_ms_per_doc'], '.3f')} | {fmt(r['cpu_efficiency'], '.3f')} | "
              f"{r['errors']} |")
        w("\ncls-b1 is the same model with max_batch_size: 1.\n")
    if res.get("recommend"):
        w("## 5. Recommendation (50 history + 20 candidates, 32 connections)\n")
        w("Short wrk runs round-robin over the three rows; p50/p99 are medians of the runs'.\n")
        w("| request | req/s | p50 ms | p99 ms | daemon CPU ms/req | cache hits | cache misses "
          "| errors |")
        w("|---|--:|--:|--:|--:|--:|--:|--:|")
        for r in res["recommend"]:
            w(f"| {r['label']} | {r['req_s']:.1f} | {r['p50_us'] / 1e3:.2f} | "
              f"{r['p99_us'] / 1e3:.2f} | {fmt(r['cpu_ms_per_req'], '.2f')} | "
              f"{r['cache_hits']:.0f} | {r['cache_misses']:.0f} | {r['errors']} |")
        w("")
    if mem:
        w(f"## 6. Memory ({mem['served']})\n")
        w("| idle RSS | idle peak | peak under load | RSS after "
          f"{mem['n_first']} | RSS after {mem['n_total']} | growth | daemon's estimate |")
        w("|--:|--:|--:|--:|--:|--:|--:|")
        est = mem["estimate_mib"]
        w(f"| {mem['idle_rss_mib']:.1f} MiB | {mem['idle_hwm_mib']:.1f} MiB | "
          f"{mem['load_hwm_mib']:.1f} MiB | {mem['rss_10k_mib']:.1f} MiB | "
          f"{mem['rss_total_mib']:.1f} MiB | {mem['growth_mib']:+.2f} MiB | "
          f"{fmt(est, '.1f') + ' MiB' if est else 'not logged'} |")
        w(f"\n{mem['req_s']:.0f} req/s at 32 connections during the long run; "
          f"{mem['errors']} errors.\n")
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--quick", action="store_true", default=os.environ.get("BENCH_QUICK") == "1")
    ap.add_argument("--only", default=",".join(ALL_PHASES),
                    help="comma-separated subset of " + ",".join(ALL_PHASES))
    args = ap.parse_args()
    phases = [p for p in args.only.split(",") if p]
    for p in phases:
        if p not in ALL_PHASES:
            ap.error(f"--only: unknown benchmark '{p}' (known: {', '.join(ALL_PHASES)})")
    build = os.path.abspath(args.build)
    out_dir = os.path.join(ROOT, "build", "bench")
    models_dir = os.path.join(out_dir, "models")
    os.makedirs(models_dir, exist_ok=True)

    res = {"machine": machine(), "quick": args.quick}
    log("writing random model directories (once) ...")
    official = bench_models.classifier_dir(os.path.join(models_dir, "official"),
                                           bench_models.OFFICIAL, 256)
    large = bench_models.classifier_dir(os.path.join(models_dir, "large"), bench_models.LARGE, 256)
    long_model = bench_models.classifier_dir(os.path.join(models_dir, "official-p4096"),
                                             bench_models.OFFICIAL, max(LENGTHS))
    rec_dir, news_tsv = bench_models.recommender_dir(os.path.join(models_dir, "recommender"))
    models = [("official", official), ("large", large)]

    t0 = time.monotonic()
    res["failures"] = {}
    with tempfile.TemporaryDirectory(prefix="fastformerd-bench-") as tmp:
        runs = {
            "engine": lambda: bench_engine(build, models, args.quick, res),
            "torch": lambda: bench_torch(build, models, args.quick, res),
            "length": lambda: bench_length(build, long_model, args.quick, res),
            "server": lambda: bench_server(build, official, tmp, args.quick, res),
            "recommend": lambda: bench_recommend(build, rec_dir, news_tsv, tmp, args.quick, res),
            "memory": lambda: bench_memory(build, official, tmp, args.quick, res),
        }
        for p in phases:
            try:
                runs[p]()
            except (RuntimeError, OSError, AssertionError, ValueError, KeyError,
                    subprocess.SubprocessError) as e:
                # One broken benchmark (e.g. a daemon that does not start yet)
                # must not hide the others: the table says what failed.
                log(f"{p}: FAILED: {e}")
                res["failures"][p] = str(e).strip().splitlines()[0][:300] if str(e) else repr(e)
    res["seconds"] = time.monotonic() - t0
    text = report(res, args.quick)
    text += f"\n_{res['seconds']:.0f} s; raw figures in build/bench/results.json._\n"
    with open(os.path.join(out_dir, "results.md"), "w") as f:
        f.write(text)
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump(res, f, indent=1)
    sys.stdout.write(text)


if __name__ == "__main__":
    main()
